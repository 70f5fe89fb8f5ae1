"""The ERBB2 classification rules, one case each, and the copy-number arithmetic."""
import numpy as np
import pytest

from her2cnv import call, io, purity
from her2cnv.purity import TumorFractionFit
from her2cnv.types import Erbb2Call

THRESHOLDS = io.read_thresholds()
PASS = {"pass": True, "reasons": []}
DETECTED = TumorFractionFit(0.2, (0.15, 0.25), True, 0.05, 0.0, 2.0, "copy-number fit", 100.0, 10, 0.004)
UNDETECTED = TumorFractionFit(None, None, False, 0.06, 0.0, None, "copy-number fit", 3.0, 10, 0.004)


def classify(**changes):
    arguments = dict(qc=PASS, significant=True, focal=True, plasma_ci=(5.0, 6.0), tumor_cn=20.0,
                     tumor_ci=(14.0, 28.0), tumor_cn_floor=11.0, lod=4.0, core_upper_cn=30.0,
                     tumor_fraction=DETECTED, readings=(), level_text="PCN 5.5", thresholds=THRESHOLDS)
    arguments.update(changes)
    return call.classify(**arguments)


def test_focal_gain_with_tumour_copy_number_above_8_is_high_level():
    assert classify()[0] == "high_level_amplification"


def test_qc_failure_is_indeterminate_with_the_reason():
    status, reason = classify(qc={"pass": False, "reasons": ["profile too noisy"]})
    assert status == "indeterminate" and "profile too noisy" in reason


def test_broad_gain_is_low_level_never_high_level():
    status, reason = classify(focal=False, tumor_cn=3.0, tumor_ci=(2.5, 3.5), core_upper_cn=5.0)
    assert status == "low_level_gain" and "broad" in reason


def test_broad_gain_that_could_hide_a_focal_amplicon_is_indeterminate():
    """No focal step resolved, but the amplicon core's own upper bound reaches 8: a focal high-level
    amplicon on top of the arm gain is not excluded (the validation grid had such CN-12 amplicons at TF 5%
    called low-level before this rule)."""
    status, reason = classify(focal=False, tumor_cn=3.0, tumor_ci=(2.5, 3.5), core_upper_cn=12.0)
    assert status == "indeterminate" and "on top of the arm gain" in reason
    status, reason = classify(focal=False, tumor_cn=None, tumor_ci=None, core_upper_cn=None,
                              tumor_fraction=UNDETECTED)
    assert status == "indeterminate" and "unbounded" in reason


def test_focal_gain_below_8_is_low_level():
    assert classify(tumor_cn=4.0, tumor_ci=(3.0, 5.5))[0] == "low_level_gain"


def fitted(plasma, plasma_ci, floor_plasma=None, detectable=2.225, core_upper=None):
    """``call.reading_values`` under every reading of a fit at TF 0.2 (0.15-0.25) with fitted ploidy 2: the
    diploid one first, then its polyploid readings (keyword arguments for ``classify``)."""
    readings = [call.reading_values(r, plasma, plasma_ci, floor_plasma or plasma_ci[0], detectable, core_upper)
                for r in purity.fitted_readings(0.2, (0.15, 0.25), 2.0)]
    reported = readings[0]
    return dict(tumor_cn=reported["tumor_copy_number"], tumor_ci=reported["tumor_copy_number_ci95"],
                tumor_cn_floor=reported["tumor_copy_number_floor"], lod=reported["limit_of_detection_copy_number"],
                core_upper_cn=reported["core_upper_copy_number"], readings=tuple(readings[1:]))


def test_a_focal_gain_low_level_only_if_the_genome_is_diploid_is_indeterminate():
    """Plasma CN 2.6 (2.5-2.7) at TF 20%: tumour CN 5 (4.0-6.7) read diploid, 10 (8.0-13.3) read genome-doubled
    with doubled steps at TF 11%, which fits the profile as well: a high-level amplification cannot be excluded.
    Plasma CN 2.2 (2.15-2.25) is CN 3 diploid and at most 7.3 under every reading: low-level."""
    values = fitted(2.6, (2.5, 2.7))
    doubled = [r for r in values["readings"] if (r["baseline_copy_number"], r["copies_per_step"]) == (4, 2)][0]
    assert doubled["tumor_copy_number"] == pytest.approx(4 + 2 * (5 - 2))
    assert doubled["tumor_copy_number_ci95"][1] == pytest.approx(4 + 2 * (2 + 0.7 / 0.15 - 2))
    assert doubled["tumor_fraction"] == pytest.approx(0.2 / 1.8) and doubled["ploidy"] == 4.0
    status, reason = classify(**values)
    assert status == "indeterminate" and "if the tumour is diploid, but under another ploidy reading" in reason
    assert "(4 tumour copies at the baseline, steps of 2, ploidy 4.0, tumour fraction 11.1%)" in reason
    assert "ERBB2 holds 10.0 (95% CI 8.0-13.3)" in reason
    assert classify(**fitted(2.2, (2.15, 2.25)))[0] == "low_level_gain"


def test_a_high_level_call_holds_under_every_reading():
    values = fitted(5.6, (5.0, 6.2), floor_plasma=4.4)
    assert min(r["tumor_copy_number_floor"] for r in values["readings"]) >= values["tumor_cn_floor"] >= 6
    assert classify(**values)[0] == "high_level_amplification"


def test_not_detected_must_hold_under_every_reading():
    """No gain at TF 20%: an amplification of 3.5 copies would have shown read diploid, 7.0 read genome-doubled
    (not detected); of 5.0 read diploid, but only 10.0 read genome-doubled (indeterminate: a doubled genome's
    amplification to 8-10 copies could hide). A genome-doubled CN-10 tumour was called not_detected so."""
    status, reason = classify(significant=False, focal=None, **fitted(2.0, (1.9, 2.1), detectable=2.225))
    assert status == "not_detected" and "3.5 or more" in reason and "under every ploidy reading" in reason
    status, reason = classify(significant=False, focal=None, **fitted(2.0, (1.9, 2.1), detectable=2.45))
    assert status == "indeterminate" and "5.0 or more tumour copies would have been detected if the tumour is " \
        "diploid, but under another ploidy reading" in reason and "only 10.0 or more" in reason


def test_a_broad_gain_is_low_level_only_if_no_reading_lets_the_core_hold_8():
    values = fitted(2.2, (2.1, 2.3), core_upper=2.45)  # the core holds < 5.0 diploid, < 10.0 doubled
    status, reason = classify(focal=False, **values)
    assert status == "indeterminate" and "under another ploidy reading" in reason and "up to 10.0" in reason
    assert classify(focal=False, **fitted(2.2, (2.1, 2.3), core_upper=2.225))[0] == "low_level_gain"


def test_high_level_needs_6_copies_with_the_confidence_a_gain_needs():
    """The floor is the tumour CN at the plasma level min_z_score SEs below the estimate, so it lies below the
    95% interval's low end: an interval above 6 is not enough (TF 2.5%, a CN-4 tumour once read as 21.9, CI
    6.8-50.7, from a 3-SE excursion of its amplicon core)."""
    status, reason = classify(tumor_cn=9.0, tumor_ci=(7.0, 13.0), tumor_cn_floor=6.0)  # 6 is inclusive
    assert status == "high_level_amplification" and "at least 6.0 copies" in reason
    status, reason = classify(tumor_cn=21.9, tumor_ci=(6.8, 50.7), tumor_cn_floor=3.5)
    assert status == "indeterminate" and "too uncertain" in reason and "at least 3.5 copies" in reason


def test_estimate_below_8_with_interval_reaching_8_is_indeterminate():
    assert classify(tumor_cn=7.0, tumor_ci=(5.0, 10.0))[0] == "indeterminate"


def test_no_gain_with_power_is_not_detected_and_states_the_limit():
    status, reason = classify(significant=False, focal=None, lod=5.5)
    assert status == "not_detected" and "5.5" in reason


def test_no_gain_without_power_is_indeterminate():
    status, reason = classify(significant=False, focal=None, lod=14.0)
    assert status == "indeterminate" and "cannot be excluded" in reason


def test_no_gain_with_tumour_fraction_below_detection_is_indeterminate_even_with_a_small_lod():
    """The LOD at the TF detection limit is a best case: the true TF may be far lower, so no gain cannot
    mean no amplification (a panel's small LOD at the limit once made such samples not_detected)."""
    status, reason = classify(significant=False, focal=None, lod=3.5, tumor_fraction=UNDETECTED)
    assert status == "indeterminate" and "too little tumour DNA" in reason and "3.5" in reason


def test_focal_gain_without_tumour_fraction():
    assert classify(tumor_cn=None, tumor_ci=None, tumor_fraction=UNDETECTED)[0] == "indeterminate"
    # a plasma copy number of 8 or more needs no tumour fraction: the tumour's can only be higher
    assert classify(tumor_cn=None, tumor_ci=None, plasma_ci=(8.5, 10.0),
                    tumor_fraction=UNDETECTED)[0] == "high_level_amplification"


def test_tumour_copy_number_interval_carries_both_uncertainties():
    estimate, (low, high) = call.tumor_copy_number(4.0, (3.6, 4.4), 0.2, (0.15, 0.25))
    assert estimate == pytest.approx(2 + 2.0 / 0.2)
    assert low == pytest.approx(2 + 1.6 / 0.25) and high == pytest.approx(2 + 2.4 / 0.15)


def test_tumour_copy_number_under_a_polyploid_baseline_follows_reference_facts():
    """[R (2(1 - TF) + TF P) - 2(1 - TF)] / TF with R = PCN / 2: a tetraploid baseline at TF 30% and ERBB2 at
    CN 12 gives R = (1.4 + 3.6) / (1.4 + 1.2), which reads back as 12; read diploid the same PCN is 8.4."""
    plasma = 2 * (1.4 + 0.3 * 12) / (1.4 + 0.3 * 4)
    assert call.copy_number_at(plasma, 0.3, 4) == pytest.approx(12)
    assert call.copy_number_at(plasma, 0.3) == pytest.approx(2 + (plasma - 2) / 0.3)


def test_tumour_copy_number_is_never_negative():
    """PCN 1.9 (1.6-2.5) at TF 20% (15-25%): the formula gives 1.5 (-0.7 to 5.3); no copy number is below 0."""
    estimate, (low, high) = call.tumor_copy_number(1.9, (1.6, 2.5), 0.2, (0.15, 0.25))
    assert estimate == pytest.approx(2 - 0.1 / 0.2) and high == pytest.approx(2 + 0.5 / 0.15)
    assert low == 0.0
    estimate, (low, high) = call.tumor_copy_number(1.5, (1.4, 1.6), 0.2, (0.15, 0.25))
    assert (estimate, low) == (0.0, 0.0) and high == pytest.approx(2 - 0.4 / 0.25)


def test_segment_se_is_never_below_its_own_bins_scatter():
    """Two chromosomes, one scattering as its weights say and one twice as widely (SD): the profile's one
    overdispersion, pooled over both, is too wide for the first and too narrow for the second, so the
    first keeps the segmentation's SE and the second gets the SE of its own residuals."""
    import numpy as np

    from her2cnv.segment import segment_profile
    from her2cnv.types import GcCurveError, Profile

    rng = np.random.default_rng(5)
    weight = np.full(400, 100.0)  # SD 0.1 per bin
    values = np.r_[rng.normal(0.0, 0.1, 200), rng.normal(1.0, 0.2, 200)]
    values[0] = np.nan
    chrom = np.array(["chr1"] * 200 + ["chr2"] * 200)
    segments = segment_profile(values, weight, chrom)
    no_gc_curve = GcCurveError(np.full(400, -1), np.zeros(400, dtype=np.int64), np.zeros(400), ())
    profile = Profile(values, weight, np.ones(400), 0.1, float("nan"), 0.0, 0, no_gc_curve)
    assert len(segments) == 2
    profile_se = (segments.ci_high - segments.ci_low) / (2 * call.Z95)
    assert call.segment_scatter_se(segments, 0, profile) == pytest.approx(profile_se[0])
    own = np.std(values[200:], ddof=1) / np.sqrt(200)
    assert call.segment_scatter_se(segments, 1, profile) == pytest.approx(own, rel=1e-9)
    assert own > 1.3 * profile_se[1]


def test_a_level_carries_its_gc_curve_error_once_however_many_bins_it_averages():
    """One GC curve whose two grid nodes share one error of 0.03 log2: a level over 10 bins or over 400 carries
    all of it, on top of its bins' own noise (SD 0.1 each); bins with no curve add nothing."""
    import numpy as np

    from her2cnv.types import GcCurveError, Profile

    shared = GcCurveError(np.r_[np.zeros(300, dtype=np.int64), np.full(100, -1)], np.zeros(400, dtype=np.int64),
                          np.linspace(0, 1, 400), (np.array([[0.03], [0.03]]),))
    profile = Profile(np.zeros(400), np.full(400, 100.0), np.ones(400), 0.1, float("nan"), 0.0, 0, shared)
    for n in (10, 300):
        _, se = call.weighted_level(profile, np.r_[np.ones(n), np.zeros(400 - n)], 1.0)
        assert se == pytest.approx(np.hypot(0.1 / np.sqrt(n), 0.03))
    _, se = call.weighted_level(profile, np.r_[np.zeros(300), np.ones(100)], 1.0)
    assert se == pytest.approx(0.01)


def test_size_weighted_call_keeps_the_plasma_measurement_and_takes_the_rest_from_the_second_look():
    """All fragments: a gain at TF below detection (indeterminate, no tumour CN). The size-weighted look
    detected the tumour DNA: its status, tumour CN, focality and LOD replace the all-fragment ones, its own
    measurement is kept beside them, and the plasma copy number monitor compares stays all-fragment."""
    def erbb2(**fields):
        base = dict(sample="S", status="indeterminate", reason="Focal ERBB2 gain (PCN 2.8) but ...",
                    log2_ratio=0.49, log2_ratio_se=0.03, measured_on="segment", core_log2_ratio=0.5, z_score=16.0,
                    null_z_score=20.0, gain_detected=True, detectable_plasma_copy_number=2.3,
                    plasma_copy_number=2.8, plasma_copy_number_ci95=(2.7, 2.9), tumor_copy_number=None,
                    tumor_copy_number_ci95=None, tumor_copy_number_floor=None, focal=True, amplicon=None,
                    arm_log2_ratios={}, limit_of_detection_copy_number=30.0, qc=PASS)
        return Erbb2Call(**{**base, **fields})

    plasma = erbb2()
    weighted = erbb2(status="high_level_amplification", reason="Focal ERBB2 amplification (PCN 3.5).",
                     plasma_copy_number=3.5, plasma_copy_number_ci95=(3.3, 3.7), log2_ratio=0.81, z_score=25.0,
                     tumor_copy_number=40.0, tumor_copy_number_ci95=(25.0, 60.0), tumor_copy_number_floor=19.0,
                     amplicon={"chrom": "chr17", "start": 39_600_000, "end": 39_900_000, "genes": ["ERBB2"]},
                     limit_of_detection_copy_number=9.0)
    combined = call.size_weighted_call(plasma, weighted, UNDETECTED)
    assert combined.tumor_copy_number_floor == 19.0
    assert (combined.status, combined.tumor_copy_number, combined.tumor_copy_number_ci95) == (
        "high_level_amplification", 40.0, (25.0, 60.0))
    assert combined.amplicon == weighted.amplicon and combined.limit_of_detection_copy_number == 9.0
    assert (combined.plasma_copy_number, combined.plasma_copy_number_ci95, combined.z_score) == (2.8, (2.7, 2.9), 16.0)
    assert combined.called_on == "size_weighted" and combined.size_weighted["plasma_copy_number"] == 3.5
    assert combined.reason.startswith("Tumour fraction below detection with all fragments (< 6.0%)")
    assert combined.reason.endswith("On these size-weighted fragments: Focal ERBB2 amplification (PCN 3.5).")


def test_a_reported_polyploid_reading_is_named_in_the_reason():
    """An external fraction that agrees only with the genome-doubled reading: the copy numbers are that reading's,
    and the reason says so."""
    doubled = purity.PloidyReading(4, 2, 0.3, (0.3, 0.3), 4.5)
    fit = TumorFractionFit(0.3, (0.3, 0.3), True, 0.05, 0.0, 4.5, "external", 0.0, 10, 0.004, readings=(doubled,))
    values = call.reading_values(doubled, 3.85, (3.6, 4.1), 3.4, 2.2, None)
    status, reason = classify(tumor_fraction=fit, tumor_cn=values["tumor_copy_number"],
                              tumor_ci=values["tumor_copy_number_ci95"],
                              tumor_cn_floor=values["tumor_copy_number_floor"])
    assert status == "high_level_amplification" and values["tumor_copy_number"] == pytest.approx(
        (1.925 * (1.4 + 1.2) - 1.4) / 0.3)
    assert "at tumour fraction 30.0% (external), read with 4 tumour copies at the baseline;" in reason


def test_a_coverage_gap_must_be_long_to_fail_qc():
    """One empty 100 kb bin can be a homozygous germline deletion (UGT2B17); a truncated BAM empties Mb."""
    from her2cnv.types import Bins
    n = 60
    bins = Bins(chrom=np.array(["chr8"] * n), start=np.arange(n) * 100_000, end=(np.arange(n) + 1) * 100_000,
                kind=np.array(["genome"] * n), gene=np.array([""] * n), gc=np.full(n, 0.4),
                n_fraction=np.zeros(n), assembly="GRCh38")
    expected, usable = np.full(n, 250.0), np.ones(n, dtype=bool)
    counts = np.full(n, 250)
    counts[10] = 0
    assert call.largest_coverage_gap(counts, expected, usable, bins) is None
    counts[30:] = 0
    assert call.largest_coverage_gap(counts, expected, usable, bins) == (7500.0, 30, 59)
