"""Tumour-fraction fit on synthetic segment tables with known clonal states."""
import numpy as np
import pytest

from her2cnv import io, purity
from her2cnv.types import Bins, Segments

GRCH38 = io.load_assembly("GRCh38")
THRESHOLDS = io.read_thresholds()
ERROR = THRESHOLDS.segment_error_floor


def make_profile(fraction, states, bins_per_segment=300, noise_se=0.004, baseline=0.0, seed=0):
    """One segment per state on its own contig (chr1, chr2, ...), 100 kb bins."""
    rng = np.random.default_rng(seed)
    n = len(states) * bins_per_segment
    chrom = np.repeat([f"chr{i + 1}" for i in range(len(states))], bins_per_segment)
    start = np.tile(np.arange(bins_per_segment) * 100_000, len(states))
    bins = Bins(chrom=chrom, start=start, end=start + 100_000, kind=np.full(n, "genome"), gene=np.full(n, ""),
                gc=np.full(n, 0.45), n_fraction=np.zeros(n), assembly="GRCh38")
    means = purity.expected_log2(fraction, np.array(states, dtype=float)) + baseline
    means = means + rng.normal(0, noise_se, len(states))
    first = np.arange(len(states)) * bins_per_segment
    segments = Segments(chrom=np.array([f"chr{i + 1}" for i in range(len(states))]), first_bin=first,
                        end_bin=first + bins_per_segment, n_bins=np.full(len(states), bins_per_segment),
                        log2_ratio=means, ci_low=means - 1.96 * noise_se, ci_high=means + 1.96 * noise_se)
    return segments, bins


@pytest.mark.parametrize("fraction", [0.08, 0.15, 0.3, 0.6])
def test_recovers_tumour_fraction_from_single_copy_events(fraction):
    segments, bins = make_profile(fraction, [2, 3, 2, 1, 2, 3, 2, 2, 1, 2])
    fit = purity.fit_tumor_fraction(segments, bins, np.ones(len(bins), bool), 0.1, GRCH38, THRESHOLDS, ERROR)
    assert fit.detected
    assert fit.estimate == pytest.approx(fraction, abs=0.02, rel=0.1)
    assert fit.ci95[0] <= fraction <= fit.ci95[1]


def test_baseline_shift_of_an_aneuploid_tumour_is_absorbed():
    # the profile is centred on its median bin; with many gains that median is not the diploid level
    segments, bins = make_profile(0.3, [3, 3, 3, 2, 2, 1, 3, 4], baseline=-0.15)
    fit = purity.fit_tumor_fraction(segments, bins, np.ones(len(bins), bool), 0.1, GRCH38, THRESHOLDS, ERROR)
    assert fit.estimate == pytest.approx(0.3, abs=0.03)
    assert fit.baseline_log2 == pytest.approx(-0.15, abs=0.01)


def test_flat_profile_is_below_detection_with_a_limit():
    segments, bins = make_profile(0.0, [2] * 10)
    fit = purity.fit_tumor_fraction(segments, bins, np.ones(len(bins), bool), 0.1, GRCH38, THRESHOLDS, ERROR)
    assert not fit.detected and fit.estimate is None
    assert 0 < fit.limit < 0.2


def test_detection_limit_falls_with_noise_and_rises_with_it():
    quiet = purity.detection_limit(0.05, 500, ERROR, THRESHOLDS)
    noisy = purity.detection_limit(0.3, 500, ERROR, THRESHOLDS)
    assert quiet < noisy
    # two single-copy arm gains at the limit give the required improvement over the flat genome
    se = np.sqrt((0.3 * purity.MAPD_TO_SD) ** 2 / 500 + ERROR ** 2)
    z_squared = (np.log2((2 + noisy) / 2) / se) ** 2
    improvement = purity.EVENTS_AT_LIMIT * (purity.segment_cost(z_squared) - THRESHOLDS.state_penalty)
    assert improvement == pytest.approx(THRESHOLDS.min_fit_improvement, rel=1e-6)


def test_one_odd_segment_does_not_make_a_tumour_fraction():
    """A single arm 4.6 SE off in a normal (a sample-specific GC residue, as seen on the validation grid)
    gives a Gaussian fit a 'tumour fraction'; the t cost does not."""
    segments, bins = make_profile(0.0, [2] * 6)
    log2_ratio = np.where(np.arange(6) == 5, -4.6 * 0.004 * np.sqrt(1 + (ERROR / 0.004) ** 2), 0.0)
    odd = Segments(chrom=segments.chrom, first_bin=segments.first_bin, end_bin=segments.end_bin,
                   n_bins=segments.n_bins, log2_ratio=log2_ratio, ci_low=log2_ratio - 1.96 * 0.004,
                   ci_high=log2_ratio + 1.96 * 0.004)
    fit = purity.fit_tumor_fraction(odd, bins, np.ones(len(bins), bool), 0.1, GRCH38, THRESHOLDS, ERROR)
    assert not fit.detected


def test_one_odd_segment_does_not_pull_the_fit_to_a_doubled_genome():
    """TF 0.3 with gains, a loss and one segment 8 SE below its state (as on the validation grid): the fit
    stays at single-copy events and TF 0.3; a Gaussian cost reads a whole-genome doubling at TF 0.165."""
    segments, bins = make_profile(0.3, [2, 2, 3, 3, 2, 1, 1, 2, 3], noise_se=0.008, seed=3)
    log2_ratio = segments.log2_ratio.copy()
    log2_ratio[6] -= 8 * np.hypot(0.008, ERROR)
    odd = Segments(chrom=segments.chrom, first_bin=segments.first_bin, end_bin=segments.end_bin,
                   n_bins=segments.n_bins, log2_ratio=log2_ratio, ci_low=log2_ratio - 1.96 * 0.008,
                   ci_high=log2_ratio + 1.96 * 0.008)
    fit = purity.fit_tumor_fraction(odd, bins, np.ones(len(bins), bool), 0.1, GRCH38, THRESHOLDS, ERROR)
    assert fit.estimate == pytest.approx(0.3, abs=0.015)
    assert fit.ploidy < 2.5


def test_model_error_is_the_larger_of_panel_and_floor():
    class PanelStub:  # only the attribute model_error reads
        arm_level_error = 0.02
    assert purity.model_error(PanelStub(), THRESHOLDS) == 0.02
    PanelStub.arm_level_error = 0.0
    assert purity.model_error(PanelStub(), THRESHOLDS) == THRESHOLDS.segment_error_floor


def test_external_fraction_is_recorded_as_such():
    segments, bins = make_profile(0.2, [2, 3, 2, 1, 2])
    fit = purity.external_tumor_fraction(0.25, segments, bins, np.ones(len(bins), bool), 0.1, GRCH38, THRESHOLDS, ERROR)
    assert fit.method == "external" and fit.estimate == 0.25 and fit.ci95 == (0.25, 0.25)


@pytest.mark.parametrize("baseline, step", purity.POLYPLOID_READINGS)
def test_each_ploidy_reading_gives_the_same_levels(baseline, step):
    """A reading's levels differ from the diploid fit's by one constant (the baseline absorbs it), so no depth
    profile can prefer either: the readings are exact, not approximate."""
    states = np.arange(1, 9, dtype=float)
    readings = purity.fitted_readings(0.2, (0.18, 0.22), 2.3)
    assert (readings[0].baseline_copy_number, readings[0].fraction) == (2, 0.2)
    (reading,) = [r for r in readings if (r.baseline_copy_number, r.copies_per_step) == (baseline, step)]
    doubled = purity.expected_log2(reading.fraction, baseline + step * (states - 2))
    difference = doubled - purity.expected_log2(0.2, states)
    assert np.ptp(difference) == pytest.approx(0, abs=1e-12)
    assert reading.ploidy == pytest.approx(baseline + step * 0.3)
    assert reading.fraction_ci95[0] < reading.fraction < reading.fraction_ci95[1]


@pytest.mark.parametrize("states, reading", [
    ([4, 6, 4, 2, 4, 6, 4, 4, 2, 4], (4, 2)),  # doubled after its arm events: every step two copies
    ([4, 5, 4, 3, 4, 5, 4, 4, 3, 4], (4, 1)),  # single-copy changes after the doubling
    ([3, 4, 3, 2, 3, 4, 3, 3, 2, 3], (3, 1)),  # near-triploid
])
def test_a_polyploid_tumour_is_fitted_as_diploid_with_its_true_reading_beside(states, reading):
    """Tetraploid and triploid tumours at TF 0.3 (the audit of 2026-11-22): the fit reads them as diploid at
    another fraction, and lists the true tumour fraction among its readings."""
    segments, bins = make_profile(0.3, states, baseline=-0.1)
    fit = purity.fit_tumor_fraction(segments, bins, np.ones(len(bins), bool), 0.1, GRCH38, THRESHOLDS, ERROR)
    assert fit.detected and fit.ploidy < 2.5 and abs(fit.estimate - 0.3) > 0.03
    (true,) = [r for r in fit.readings if (r.baseline_copy_number, r.copies_per_step) == reading]
    assert true.fraction == pytest.approx(0.3, abs=0.01)
    assert true.ploidy == pytest.approx(np.mean(states), abs=0.05)


def test_an_external_fraction_keeps_the_readings_it_agrees_with():
    """A doubled tumour at TF 0.3, which the fit reads diploid at 0.46: 0.3 agrees only with the (4, 2) reading,
    which it keeps, on the fit's baseline (the level of 4 copies); 0.12 agrees with no reading and conflicts. At
    TF 0.05 the diploid, triploid and single-step tetraploid readings need nearly the same fraction: all stay."""
    segments, bins = make_profile(0.3, [4, 6, 4, 2, 4, 6, 4, 4, 2, 4], baseline=-0.1)
    arguments = (segments, bins, np.ones(len(bins), bool), 0.1, GRCH38, THRESHOLDS, ERROR)
    fit = purity.external_tumor_fraction(0.3, *arguments)
    assert fit.conflict is None and [(r.baseline_copy_number, r.fraction) for r in fit.readings] == [(4, 0.3)]
    assert fit.baseline_log2 == pytest.approx(purity.expected_log2(0.3, np.array([4.0]))[0] - 0.1, abs=0.01)
    conflict = purity.external_tumor_fraction(0.12, *arguments).conflict
    assert "disagrees" in conflict and "read polyploid" in conflict
    segments, bins = make_profile(0.05, [2, 3, 2, 1, 2, 3, 2, 2, 1, 2], noise_se=0.002)
    low = purity.external_tumor_fraction(0.05, segments, bins, *arguments[2:])
    assert [r.baseline_copy_number for r in low.readings] == [2, 3, 4]
