"""Panel-of-normals and normalisation math on small synthetic count matrices."""
import dataclasses

import numpy as np
import pytest

from her2cnv import bins as bins_module
from her2cnv import io, normalize, pon
from her2cnv.errors import InputError
from her2cnv.types import FragmentCounts

GRCH38 = io.load_assembly("GRCh38")
LENGTHS = {"chr8": 20_000_000, "chr17": 83_257_441, "chr18": 15_000_000}


@pytest.fixture(scope="module")
def bins():
    chrom, start, end, kind = bins_module.genome_layout(LENGTHS, GRCH38, list(LENGTHS))
    rng = np.random.default_rng(0)
    gc = np.clip(rng.normal(0.45, 0.05, len(chrom)), 0.3, 0.65)
    return bins_module.make_bins(chrom, start, end, kind, gc, np.zeros(len(chrom)), GRCH38, LENGTHS)


def simulate_counts(bins, seed, depth=300.0, ratio=None, shared=None):
    """Poisson-gamma counts with a per-sample GC curve and a shared per-bin efficiency."""
    rng = np.random.default_rng(seed)
    efficiency = np.exp(np.random.default_rng(1).normal(0, 0.15, len(bins))) if shared is None else shared
    slope, curvature = rng.normal(0, 0.8), rng.normal(0, 4)
    centred = bins.gc - 0.45
    mean = depth * (bins.end - bins.start) / 100_000 * efficiency * np.exp(slope * centred + curvature * centred ** 2)
    if ratio is not None:
        mean = mean * ratio
    return rng.poisson(rng.gamma(100, mean / 100)).astype(np.int64)


@pytest.fixture(scope="module")
def panel(bins):
    normals = np.vstack([simulate_counts(bins, seed) for seed in range(12)])
    return pon.build_panel(normals, bins, tuple(f"N{i}" for i in range(12)), assembly=GRCH38)


def test_gc_correction_flattens_a_gc_curve(bins):
    counts = simulate_counts(bins, 5, depth=5000, shared=np.ones(len(bins)))
    log2_depth, expected, gc_bias, _ = normalize.gc_corrected_log2(counts, bins, normalize.static_mask(bins))
    slope = np.polyfit(bins.gc, log2_depth, 1)[0]
    assert abs(slope) < 0.3  # the raw curve has slopes of several log2 units per unit GC
    assert gc_bias > 0.0
    assert np.allclose(np.median(counts / expected), 1.0, atol=0.02)


def test_loess_smoother_reproduces_a_line():
    """A local linear smoother fits a straight line exactly, and each row's coefficients sum to 1."""
    grid = np.arange(0.30, 0.65, 0.005)
    weight = np.random.default_rng(3).integers(1, 20, len(grid)).astype(float)
    smoother = normalize.loess_smoother(grid, weight, grid)
    assert np.allclose(smoother.sum(axis=1), 1.0)
    assert np.allclose(smoother @ (3.0 - 2.0 * grid), 3.0 - 2.0 * grid)


def test_gc_curve_error_predicts_the_scatter_of_a_level_at_one_gc():
    """Twelve bins of one GC (left out of the fit, like the amplicon) in 300: across 200 replicate samples
    their mean log2 depth scatters as their own noise and the fitted curve's error together predict; their
    own noise alone would understate it by more than a fifth."""
    lengths = {"chr8": 15_000_000, "chr18": 15_000_000}
    layout = bins_module.genome_layout(lengths, GRCH38, list(lengths))
    gc = np.clip(np.random.default_rng(0).normal(0.45, 0.05, len(layout[0])), 0.3, 0.65)
    small = bins_module.make_bins(*layout, gc, np.zeros(len(gc)), GRCH38, lengths)
    one_gc = (small.gc > 0.53) & (small.gc < 0.57)
    assert one_gc.sum() == 12
    mask = normalize.static_mask(small) | np.where(one_gc, 4, 0).astype(np.uint8)  # out of the GC fit
    mean = 2000 * np.exp((small.gc - 0.45) - 8 * (small.gc - 0.45) ** 2)
    levels, curve_se = [], []
    for replicate in range(200):
        counts = np.random.default_rng(100 + replicate).poisson(
            np.random.default_rng(1000 + replicate).gamma(100, mean / 100))
        log2_depth, _, _, error = normalize.gc_corrected_log2(counts, small, mask)
        levels.append(np.mean(log2_depth[one_gc] - np.log2(mean[one_gc])))
        curve_se.append(normalize.gc_error_se(error, one_gc.astype(float)))
    own_se = np.sqrt(np.mean(1 / mean[one_gc] + 0.01) / one_gc.sum()) / np.log(2)  # Poisson-gamma, CV 0.1
    predicted = np.hypot(own_se, np.mean(curve_se))
    assert np.std(levels) == pytest.approx(predicted, rel=0.12)
    assert np.std(levels) > 1.25 * own_se  # own noise alone: understated by more than a fifth


def test_scaling_counts_leaves_log2_ratios_unchanged(bins, panel):
    counts = simulate_counts(bins, 40, depth=2000)
    one = normalize.log2_ratios(counts, panel[0], bins)
    three = normalize.log2_ratios(counts * 3, panel[0], bins)
    assert np.nanmax(np.abs(one.log2_ratio - three.log2_ratio)) < 0.01  # only the pseudo-count differs


def test_normal_order_does_not_change_the_panel(bins):
    normals = np.vstack([simulate_counts(bins, seed) for seed in range(6)])
    names = tuple(f"N{i}" for i in range(6))
    forward, _ = pon.build_panel(normals, bins, names, assembly=GRCH38)
    reverse, _ = pon.build_panel(normals[::-1], bins, names[::-1], assembly=GRCH38)
    np.testing.assert_allclose(forward.reference_log2, reverse.reference_log2, equal_nan=True)
    np.testing.assert_array_equal(forward.mask, reverse.mask)


def test_panel_learns_the_shared_efficiency(bins, panel):
    built, report = panel
    assert report.noise_denoised < report.noise_gc_only * 0.8
    assert report.outliers == {}
    sample = normalize.log2_ratios(simulate_counts(bins, 77), built, bins)
    assert sample.noise < report.noise_gc_only * 0.8


def test_focal_gain_is_recovered(bins, panel):
    in_amplicon = (bins.chrom == "chr17") & (bins.start >= 39_600_000) & (bins.end <= 39_900_000)
    ratio = np.where(in_amplicon, (2 * 0.8 + 0.2 * 20) / 2, 1.0)
    profile = normalize.log2_ratios(simulate_counts(bins, 91, ratio=ratio), panel[0], bins)
    measured = np.average(profile.log2_ratio[in_amplicon], weights=profile.weight[in_amplicon])
    standard_error = 1 / np.sqrt(profile.weight[in_amplicon].sum())
    assert abs(measured - np.log2(2.8)) < 4 * standard_error + 0.03
    assert abs(np.nanmedian(profile.log2_ratio[~in_amplicon])) < 0.02


def test_outlier_normal_is_left_out(bins):
    normals = [simulate_counts(bins, seed) for seed in range(8)]
    shifted = np.where(bins.chrom == "chr8", 1.5, 1.0)
    normals[3] = simulate_counts(bins, 3, ratio=shifted)
    built, report = pon.build_panel(np.vstack(normals), bins, tuple(f"N{i}" for i in range(8)), assembly=GRCH38)
    assert set(report.outliers) == {"N3"} and "chr8" in report.outliers["N3"]
    assert "N3" not in built.sample_names
    kept, _ = pon.build_panel(np.vstack(normals), bins, tuple(f"N{i}" for i in range(8)), keep_outliers=True,
                               assembly=GRCH38)
    assert "N3" in kept.sample_names


def test_too_few_normals_are_refused(bins):
    with pytest.raises(InputError, match="at least 3"):
        pon.build_panel(np.vstack([simulate_counts(bins, 1)] * 2), bins, ("A", "B"), assembly=GRCH38)


def test_gavish_donoho_finds_planted_components():
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 1, (40, 3000))
    signal = 30 * np.outer(rng.normal(0, 1, 40), rng.normal(0, 1, 3000)) / np.sqrt(3000) * 3
    values = np.linalg.svd(noise + signal, compute_uv=False)
    assert pon.gavish_donoho_rank(values, 40, 3000) == 1
    assert pon.gavish_donoho_rank(np.linalg.svd(noise, compute_uv=False), 40, 3000) == 0


def test_panel_file_round_trip_is_byte_stable(bins, panel, tmp_path):
    built, report = panel
    metadata = {"assembly": "GRCh38", "bins_checksum": bins.checksum, "samples": list(built.sample_names),
                "channels": list(normalize.CHANNELS), "count_filters": {"min_mapq": 20}, "normal_fragments": 80_000}
    io.write_panel(tmp_path / "a.npz", {channel: built for channel in normalize.CHANNELS}, metadata)
    io.write_panel(tmp_path / "b.npz", {channel: built for channel in normalize.CHANNELS}, metadata)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    panels, read_metadata = io.read_panel(tmp_path / "a.npz")
    np.testing.assert_array_equal(panels["all"].mask, built.mask)
    assert panels["all"].arm_level_error == built.arm_level_error and panels["all"].normal_fragments == 80_000
    assert read_metadata["samples"] == list(built.sample_names)
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "corrupt.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a readable her2cnv panel"):
        io.read_panel(tmp_path / "corrupt.npz")
    io.write_panel(tmp_path / "all_only.npz", {"all": built}, {**metadata, "channels": ["all"]})
    with pytest.raises(InputError, match="lacks channel.s. short, size_weighted; rebuild it"):
        io.read_panel(tmp_path / "all_only.npz")


def test_denoising_removes_a_factor_that_varies_between_samples(bins):
    """A per-bin pattern whose strength differs between samples (as library-prep batches give) is what the
    components learn: the median reference cannot remove it, the projection does. (It must not be smooth:
    MAPD, the noise metric, compares neighbouring bins.)"""
    wave = np.random.default_rng(4).normal(0, 0.25, len(bins))
    rng = np.random.default_rng(8)

    def with_wave(seed, strength):
        return simulate_counts(bins, seed, depth=2000, ratio=np.exp2(strength * wave))

    normals = np.vstack([with_wave(seed, rng.normal(0, 1)) for seed in range(16)])
    built, report = pon.build_panel(normals, bins, tuple(f"N{i}" for i in range(16)), assembly=GRCH38)
    assert report.n_components >= 1
    assert report.noise_denoised < 0.7 * report.noise_reference
    profile = normalize.log2_ratios(with_wave(99, 1.5), built, bins)
    without_components = dataclasses.replace(built, basis=built.basis[:0])
    assert profile.noise < 0.7 * normalize.log2_ratios(with_wave(99, 1.5), without_components, bins).noise


def test_arm_level_error_measures_arm_shifts_the_bins_do_not_predict(bins, panel):
    """Normals whose chromosome arms each sit a little off (SD 0.03 log2, as a sample-specific GC residue
    gives) show it in ``arm_level_error`` (a 95% upper bound, so at or above the truth but not far);
    normals without such shifts show about none."""
    panel_without, _ = panel
    assert panel_without.arm_level_error < 0.01
    arms = bins_module.arm_masks(bins, np.ones(len(bins), bool), GRCH38)
    rng = np.random.default_rng(21)

    def shifted(seed):
        ratio = np.ones(len(bins))
        for arm in arms:
            ratio[arm] = np.exp2(rng.normal(0, 0.03))
        return simulate_counts(bins, seed, depth=2000, ratio=ratio)

    normals = np.vstack([shifted(seed) for seed in range(30)])
    built, report = pon.build_panel(normals, bins, tuple(f"N{i}" for i in range(30)), assembly=GRCH38)
    assert report.arm_level_error == built.arm_level_error
    assert 0.025 < built.arm_level_error < 0.05


def test_panel_in_the_older_format_is_refused_with_a_rebuild_hint(bins, panel, tmp_path, monkeypatch):
    built, _ = panel
    metadata = {"assembly": "GRCh38", "bins_checksum": bins.checksum, "samples": list(built.sample_names),
                "channels": ["all"]}
    monkeypatch.setattr(io, "PON_FORMAT", "her2cnv.pon/1")
    io.write_panel(tmp_path / "old.npz", {"all": built}, metadata)
    monkeypatch.undo()
    with pytest.raises(InputError, match=r"made by an older her2cnv \(her2cnv.pon/1.*remake it with 'her2cnv pon'"):
        io.read_panel(tmp_path / "old.npz")


def test_size_weighted_ceiling_is_the_share_of_an_all_short_tumour(bins):
    """16% of fragments short, TF 3%: a tumour with every fragment short holds 3 x 0.03 / (1.32 x 0.97 + 0.09)
    of the weighted counts; the simulator's tumour (47% short) holds less, as any real one must."""
    n = len(bins)
    counts = FragmentCounts(sample="S", bins=bins, count=np.full(n, 100), short_count=np.full(n, 16),
                            outcomes={}, fragment_length_histogram=np.zeros(1, dtype=np.int64), metadata={})
    ceiling = normalize.largest_size_weighted_share(counts, 0.03)
    assert ceiling == pytest.approx(0.09 / (1.32 * 0.97 + 0.09))
    realistic = 0.03 * (1 + 2 * 0.47) / (0.97 * 1.32 + 0.03 * (1 + 2 * 0.47))
    assert realistic < ceiling
    np.testing.assert_array_equal(normalize.channel_counts(counts, "size_weighted"), np.full(n, 132))


def test_a_panel_shallower_than_the_sample_leaves_sparse_bins_unbiased(bins):
    """Normals with ~2 fragments per 10 kb locus bin against a sample with ~30: the panel's reference is the
    normals' summed counts over their summed fitted depths, so the sample's locus bins read ~0. The median of
    the normals' log2 depths, the reference until 2026-11-22, reads them 0.2 log2 low here (a diploid ERBB2
    at plasma CN 1.7)."""
    normals = np.vstack([simulate_counts(bins, seed, depth=20.0) for seed in range(12)])
    shallow = pon.build_panel(normals, bins, tuple(f"N{i}" for i in range(12)), assembly=GRCH38)[0]
    locus = bins.kind == "locus"
    levels, medians = [], []
    for seed in range(100, 106):
        profile = normalize.log2_ratios(simulate_counts(bins, seed, depth=300.0), shallow, bins)
        use = locus & np.isfinite(profile.log2_ratio)
        levels.append(np.average(profile.log2_ratio[use], weights=profile.weight[use]))
        log2_depth = np.vstack([normalize.gc_corrected_log2(row, bins, shallow.mask)[0] for row in normals])
        median_reference = np.median(log2_depth, axis=0)
        medians.append(np.average((profile.log2_ratio + shallow.reference_log2 - median_reference)[use],
                                  weights=profile.weight[use]))
    assert abs(np.mean(levels)) < 0.03
    assert np.mean(medians) < -0.1


def test_efficiency_is_the_reference_where_the_panel_is_deep_and_its_kind_median_where_it_is_noise():
    """Efficiencies spread 0.3 log2 across bins: with 10,000 expected fragments per normal and bin they are kept;
    with 1.5 (Poisson counts), whose error swamps the spread, little more than the median is left."""
    rng = np.random.default_rng(3)
    reference = rng.normal(0.0, 0.3, 400)
    usable, kind = np.ones(400, dtype=bool), np.full(400, "genome")
    deep_expected = np.full((10, 400), 10_000.0)
    deep = rng.poisson(deep_expected * np.exp2(reference)) / deep_expected
    efficiency = pon.efficiency_log2(np.log2(deep.mean(axis=0)), deep, deep_expected, usable, kind)
    assert np.max(np.abs(efficiency - reference)) < 0.02
    shallow_expected = np.full((6, 400), 1.5)
    shallow = rng.poisson(shallow_expected * np.exp2(reference)) / shallow_expected
    noisy = np.log2(np.maximum(shallow.mean(axis=0), 0.05))
    assert np.std(pon.efficiency_log2(noisy, shallow, shallow_expected, usable, kind)) < 0.5 * np.std(noisy)


def test_one_deep_normal_with_a_constitutional_gain_cannot_move_the_reference(bins):
    """Eight normals, one of them 8 times deeper and with a one-copy gain (x1.5) over the ERBB2 locus: summed
    counts would follow it (+0.26 log2 in an audit), the median of log2 depths barely (0.01); the clipped mean of
    ratios by 3 of its Poisson SDs over 8 at most (here 0.04)."""
    normals = [simulate_counts(bins, seed) for seed in range(7)]
    gained = np.where(bins.kind == "locus", 1.5, 1.0)
    normals.append(simulate_counts(bins, 99, depth=2400.0, ratio=gained))
    clean = pon.build_panel(np.vstack(normals[:7]), bins, tuple(f"N{i}" for i in range(7)), assembly=GRCH38)[0]
    mixed = pon.build_panel(np.vstack(normals), bins, tuple(f"N{i}" for i in range(8)), assembly=GRCH38)[0]
    locus = (bins.kind == "locus") & mixed.usable & clean.usable
    assert abs(np.mean(mixed.reference_log2[locus] - clean.reference_log2[locus])) < 0.05


def test_a_shallow_normal_with_a_constitutional_gain_is_left_out_where_it_has_it(bins):
    """Three normals with ~6 fragments per locus bin, one with a one-copy gain (x1.5) over the locus: within 3
    Poisson SDs bin by bin, so the clip keeps it, but its own profile segments it out, and the reference there
    is the other two's. A sample's locus then reads as against a panel whose third normal is clean (an audit had
    the locus read 0.21 log2 high, a diploid ERBB2 at plasma CN 1.63)."""
    gained = np.where(bins.kind == "locus", 1.5, 1.0)
    clean = [simulate_counts(bins, 1, depth=60.0), simulate_counts(bins, 2, depth=60.0)]
    panel, report = pon.build_panel(np.vstack(clean + [simulate_counts(bins, 3, depth=60.0, ratio=gained)]), bins,
                                    ("N1", "N2", "SAME"), assembly=GRCH38)
    assert set(report.excluded_bins) == {"SAME"} and report.excluded_bins["SAME"] >= 0.9 * (bins.kind == "locus").sum()
    reference = pon.build_panel(np.vstack(clean + [simulate_counts(bins, 4, depth=60.0)]), bins, ("N1", "N2", "N4"),
                                assembly=GRCH38)[0]
    levels = []
    for candidate in (panel, reference):
        sample = normalize.log2_ratios(simulate_counts(bins, 7), candidate, bins)
        locus = (bins.kind == "locus") & np.isfinite(sample.log2_ratio)
        levels.append(np.average(sample.log2_ratio[locus], weights=sample.weight[locus]))
    assert abs(levels[0] - levels[1]) < 0.1  # the reference noise of 2 normals against 3 at 6 fragments per bin
