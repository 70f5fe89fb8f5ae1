"""Segmentation on seeded simulated profiles: false positives on noise, recovery of steps and focal amplicons."""
import time

import numpy as np
import pytest

from her2cnv import segment
from her2cnv.errors import InputError


def noise(rng, sd):
    """Gaussian noise with per-bin SD ``sd`` and the matching inverse-variance weights."""
    sd = np.asarray(sd, dtype=np.float64)
    return rng.normal(size=sd.shape) * sd, 1.0 / sd**2


def change_points(segments) -> int:
    return len(segments) - len(set(segments.chrom.tolist()))


def assert_tiles(segments, chrom):
    """Segments cover every contig's bins exactly once, in order."""
    assert segments.first_bin[0] == 0 and segments.end_bin[-1] == len(chrom)
    assert np.array_equal(segments.first_bin[1:], segments.end_bin[:-1])
    for first, end, label in zip(segments.first_bin, segments.end_bin, segments.chrom):
        assert np.all(chrom[first:end] == label)


def focal_amplicon_profile(seed=3):
    """A 2000-bin chr17: arm gain +0.2 over [1000, 1800), fine low-weight bins (SD 0.3) over
    [1250, 1380) and a 15-bin amplicon at +1.0 over [1300, 1315); SD 0.15 elsewhere."""
    rng = np.random.default_rng(seed)
    sd = np.full(2000, 0.15)
    sd[1250:1380] = 0.3
    x, w = noise(rng, sd)
    x[1000:1800] += 0.2
    x[1300:1315] += 0.8
    return x, w, np.full(2000, "chr17")


def brute_force_boundaries(x, w, penalty, min_bins):
    """Optimal partitioning by exhaustive O(n^2) recursion, the reference for PELT."""
    n = len(x)
    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    last = np.zeros(n + 1, dtype=int)
    for t in range(1, n + 1):
        for s in range(0, t - min_bins + 1):
            ws, xs = w[s:t], x[s:t]
            total = best[s] + (ws * xs**2).sum() - (ws * xs).sum() ** 2 / ws.sum() + penalty
            if total < best[t] - 1e-9:
                best[t], last[t] = total, s
    boundaries = [n]
    while boundaries[-1] > 0:
        boundaries.append(last[boundaries[-1]])
    return boundaries[::-1]


def test_pelt_matches_exhaustive_optimal_partitioning():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n, min_bins = int(rng.integers(6, 60)), int(rng.integers(1, 4))
        x = rng.normal(size=n) + np.repeat(rng.normal(scale=2, size=3), -(-n // 3))[:n]
        w = rng.uniform(0.5, 3, size=n)
        penalty = float(rng.uniform(1, 12))
        assert segment.pelt_boundaries(x, w, penalty, min_bins).tolist() == brute_force_boundaries(x, w, penalty, min_bins)


def test_noiseless_step_is_split_exactly():
    x = np.r_[np.zeros(10), np.ones(10)]
    segments = segment.segment_profile(x, np.ones(20), np.full(20, "chr1"))
    assert segments.end_bin.tolist() == [10, 20]
    assert segments.log2_ratio.tolist() == [0.0, 1.0]


def test_pure_noise_gives_almost_no_change_points():
    # 10 genomes of 5 x 2000 bins; calibration (see segment_profile) predicts ~0.03 false change points here.
    chrom = np.repeat([f"chr{i}" for i in range(1, 6)], 2000)
    found = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        x, w = noise(rng, rng.uniform(0.1, 0.2, size=len(chrom)))
        found += change_points(segment.segment_profile(x, w, chrom))
    assert found <= 1


def test_step_is_found_within_two_bins_and_its_level_within_its_interval():
    # A 2-SD step cannot be placed exactly every time: over 200 seeds 93% of its ends fell within
    # 2 bins (99% within 5) and the 95% interval held the true level in 94% of runs.
    within_two, covered = 0, 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x, w = noise(rng, np.full(2000, 0.15))
        x[700:1300] += 0.3
        segments = segment.segment_profile(x, w, np.full(2000, "chr1"))
        assert len(segments) == 3
        errors = np.abs(segments.end_bin[:2] - [700, 1300])
        assert errors.max() <= 10
        within_two += np.count_nonzero(errors <= 2)
        covered += segments.ci_low[1] <= 0.3 <= segments.ci_high[1]
    assert within_two >= 34 and covered >= 17  # of 40 and 20


def test_focal_amplicon_on_low_weight_bins_forms_its_own_segment_within_an_arm_gain():
    # Over 100 seeds: always 5 segments; 99% of amplicon ends within 2 bins (all within 4); the
    # arm gain's ends (a 1.3-SD step) 82% within 2 bins, all within 14; 96% interval coverage.
    amplicon_within_two, arm_within_two, covered = 0, 0, 0
    for seed in range(20):
        x, w, chrom = focal_amplicon_profile(seed)
        segments = segment.segment_profile(x, w, chrom)
        assert len(segments) == 5  # arm gain, amplicon, arm gain between the unchanged ends
        errors = np.abs(segments.end_bin[:-1] - [1000, 1300, 1315, 1800])
        assert errors[[1, 2]].max() <= 4 and errors[[0, 3]].max() <= 15
        amplicon_within_two += np.count_nonzero(errors[[1, 2]] <= 2)
        arm_within_two += np.count_nonzero(errors[[0, 3]] <= 2)
        covered += sum(segments.ci_low[i] <= truth <= segments.ci_high[i] for i, truth in [(1, 0.2), (2, 1.0), (3, 0.2)])
        assert segments.ci_high[2] - segments.ci_low[2] > segments.ci_high[1] - segments.ci_low[1]
    assert amplicon_within_two >= 38 and arm_within_two >= 28 and covered >= 54  # of 40, 40 and 60


def test_masked_bins_are_skipped_but_segments_still_tile_every_contig():
    rng = np.random.default_rng(2)
    chrom = np.repeat(["chr1", "chr2", "chr3"], [1000, 1000, 300])
    x, w = noise(rng, np.full(len(chrom), 0.15))
    x[500:1000] += 0.4  # a step on chr1 ...
    x[490:510] = np.nan  # ... inside a masked gap, so its boundary can only be the next unmasked bin
    x[rng.random(len(chrom)) < 0.1] = np.nan
    x[:5] = np.nan
    x[995:1000] = np.nan
    x[1400:1600] = np.nan  # a masked centromere on chr2 with no change across it
    x[1995:2000] = np.nan
    x[2000:] = np.nan  # chr3 fully masked
    segments = segment.segment_profile(x, w, chrom)
    assert_tiles(segments, chrom)
    assert segments.chrom.tolist() == ["chr1", "chr1", "chr2", "chr3"]
    assert segments.end_bin[0] == 510  # masked bins at a boundary go with the segment on their left
    assert segments.n_bins[:3].sum() == np.count_nonzero(~np.isnan(x))
    assert segments.n_bins[3] == 0 and np.all(np.isnan([segments.log2_ratio[3], segments.ci_low[3]]))
    assert not np.any(np.isnan(segments.log2_ratio[:3]))


def test_single_outlier_bins_do_not_form_segments_but_a_run_of_min_bins_does():
    rng = np.random.default_rng(4)
    x, w = noise(rng, np.full(1000, 0.15))
    x[[0, 300, 302, 999]] = 3.0
    assert len(segment.segment_profile(x, w, np.full(1000, "chr1"))) == 1
    x[800:803] = 3.0
    segments = segment.segment_profile(x, w, np.full(1000, "chr1"))
    assert segments.first_bin.tolist() == [0, 800, 803]
    assert segments.log2_ratio[1] == pytest.approx(3.0)
    assert segment.segment_profile(x, w, np.full(1000, "chr1"), min_bins=1).n_bins.min() == 1


def test_every_segment_has_at_least_min_bins_unmasked_bins():
    x, w, chrom = focal_amplicon_profile()
    for min_bins in (3, 20):
        assert segment.segment_profile(x, w, chrom, min_bins=min_bins).n_bins.min() >= min_bins


def test_segmentation_is_deterministic_and_ignores_the_scale_of_the_weights():
    x, w, chrom = focal_amplicon_profile()
    first = segment.segment_profile(x, w, chrom)
    again = segment.segment_profile(x, w, chrom)
    scaled = segment.segment_profile(x, w * 7.3, chrom)
    for name in ("chrom", "first_bin", "end_bin", "n_bins", "log2_ratio", "ci_low", "ci_high"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert np.array_equal(first.end_bin, scaled.end_bin)
    assert np.allclose(first.ci_low, scaled.ci_low) and np.allclose(first.log2_ratio, scaled.log2_ratio)


def test_a_larger_penalty_drops_the_weaker_change_points_first():
    # The amplicon's two ends lower the cost by ~100 phi together, the arm gain's by ~400 phi each.
    x, w, chrom = focal_amplicon_profile()
    segments = segment.segment_profile(x, w, chrom, penalty=150.0)
    assert len(segments) == 3
    assert np.all(np.abs(segments.end_bin[:-1] - [1000, 1800]) <= 15)


def test_whole_genome_of_30000_bins_is_fast():
    rng = np.random.default_rng(5)
    sizes = [2490, 2422, 1983, 1902, 1815, 1708, 1593, 1560, 1451, 1383, 1350, 1337, 1332, 1143,
             1070, 1020, 903, 962, 803, 644, 586, 508, 467]
    chrom = np.repeat([f"chr{i}" for i in range(1, 24)], sizes)
    x, w = noise(rng, np.full(len(chrom), 0.15))
    started = time.perf_counter()
    segments = segment.segment_profile(x, w, chrom)
    elapsed = time.perf_counter() - started
    print(f"segment_profile on {len(chrom)} bins: {elapsed:.3f} s")
    assert_tiles(segments, chrom)
    assert elapsed < 5.0


def test_bad_inputs_are_rejected_with_the_bin_named():
    chrom = np.array(["chr1"] * 3 + ["chr2"] * 3 + ["chr1"] * 3)
    with pytest.raises(InputError, match="chr1 are not contiguous"):
        segment.segment_profile(np.zeros(9), np.ones(9), chrom)
    with pytest.raises(InputError, match="bin 2 "):
        segment.segment_profile(np.zeros(4), np.array([1.0, 1.0, 0.0, 1.0]), np.full(4, "chr1"))
    with pytest.raises(InputError, match="one value per bin"):
        segment.segment_profile(np.zeros(4), np.ones(3), np.full(4, "chr1"))
    masked_with_no_weight = segment.segment_profile(np.array([np.nan, 0.0]), np.array([0.0, 1.0]), np.full(2, "chr1"))
    assert masked_with_no_weight.n_bins.tolist() == [1]


def test_arms_are_segmented_apart_so_a_small_arm_level_step_gets_its_own_segment():
    """A +0.015 log2 q-arm gain (a single-copy arm gain at 3% tumour fraction) over 1,000 bins of SD 0.08:
    too small for PELT to pay for a change point, but with arms given the centromere is a boundary."""
    rng = np.random.default_rng(11)
    x, w = noise(rng, np.full(1600, 0.08))
    x[600:] += 0.015
    x[590:600] = np.nan  # masked bins before the centromere stay with the p arm
    chrom, arm = np.full(1600, "chr8"), np.r_[np.zeros(600, np.int8), np.ones(1000, np.int8)]
    assert len(segment.segment_profile(x, w, chrom)) == 1
    segments = segment.segment_profile(x, w, chrom, arm=arm)
    assert_tiles(segments, chrom)
    assert segments.first_bin.tolist() == [0, 600] and segments.n_bins.tolist() == [590, 1000]
    assert segments.chrom.tolist() == ["chr8", "chr8"]  # contigs, not arm labels
    q_level = np.average(x[600:], weights=w[600:])
    assert segments.log2_ratio[1] == pytest.approx(q_level)
    assert segments.log2_ratio[1] - segments.log2_ratio[0] == pytest.approx(0.015, abs=0.01)
    # each arm still finds its own change points; no segment crosses the centromere
    x[1200:1300] += 0.5
    segments = segment.segment_profile(x, w, chrom, arm=arm)
    assert segments.first_bin.tolist() == [0, 600, 1200, 1300]


def test_an_arm_with_no_unmasked_bins_is_one_empty_segment():
    rng = np.random.default_rng(12)
    x, w = noise(rng, np.full(300, 0.1))
    x[:100] = np.nan  # an acrocentric p arm: all N
    arm = np.r_[np.zeros(100, np.int8), np.ones(200, np.int8)]
    segments = segment.segment_profile(x, w, np.full(300, "chr13"), arm=arm)
    assert segments.first_bin.tolist() == [0, 100] and segments.n_bins.tolist() == [0, 200]
    assert np.isnan(segments.log2_ratio[0])


def test_arm_labels_must_cover_every_bin():
    x, w = noise(np.random.default_rng(13), np.full(50, 0.1))
    with pytest.raises(InputError, match="one value per bin"):
        segment.segment_profile(x, w, np.full(50, "chr1"), arm=np.zeros(49, np.int8))
