"""Response categories and flags on hand-made timepoints; the report escapes what it is given."""
import dataclasses

import numpy as np
import pytest

from her2cnv import io, monitor, report
from her2cnv.errors import InputError

THRESHOLDS = io.read_thresholds()
Z95 = 1.959964


def interval(value, se):
    return value - Z95 * se, value + Z95 * se


BASE = monitor.Timepoint(sample="B", date="2026-01-05", status="high_level_amplification", qc_pass=True,
                         gain_detected=True, plasma_copy_number=5.6, plasma_copy_number_ci95=interval(5.6, 0.15),
                         detectable_plasma_copy_number=2.6, tumor_fraction=0.2,
                         tumor_fraction_ci95=interval(0.2, 0.015), tumor_fraction_limit=0.08,
                         tumor_copy_number=20.0, tumor_copy_number_ci95=interval(20.0, 2.0),
                         pon_checksum="p", bins_checksum="b", called_on="all", thresholds=None)


def later(plasma=None, fraction=None, **changes):
    """A later timepoint; ``plasma`` and ``fraction`` as (value, SE)."""
    if plasma is not None:
        changes.update(plasma_copy_number=plasma[0], plasma_copy_number_ci95=interval(*plasma))
    if fraction is not None:
        changes.update(tumor_fraction=fraction[0], tumor_fraction_ci95=interval(*fraction))
    return dataclasses.replace(BASE, **{"sample": "L", "date": "2026-01-26", **changes})


def response(point, baseline=BASE):
    return monitor.track_patient([baseline, point], THRESHOLDS)[1]["change_from_baseline"]


def test_a_large_significant_fall_is_a_molecular_response():
    assert response(later(plasma=(2.9, 0.1), fraction=(0.05, 0.01)))["response"] == "molecular_response"


def test_a_small_fall_is_stable():
    assert response(later(plasma=(5.0, 0.15)))["response"] == "stable"


def test_a_large_significant_rise_is_progression():
    assert response(later(plasma=(7.4, 0.2)))["response"] == "progression"


def test_noise_sized_differences_are_stable():
    assert response(later(plasma=(5.9, 0.15)))["response"] == "stable"


def test_clearance_needs_power():
    gone = later(status="not_detected", gain_detected=False, plasma=(2.05, 0.1))
    assert response(gone)["response"] == "clearance"
    weak = dataclasses.replace(gone, detectable_plasma_copy_number=6.5)
    assert response(weak)["response"] == "not_evaluable"


CLEAN = dataclasses.replace(BASE, status="not_detected", gain_detected=False, plasma_copy_number=2.0,
                            plasma_copy_number_ci95=interval(2.0, 0.1))


def test_new_detection_is_progression_and_qc_failure_not_evaluable():
    assert response(later(), baseline=CLEAN)["response"] == "progression"
    assert response(later(qc_pass=False))["response"] == "not_evaluable"


def test_new_detection_needs_a_baseline_that_could_have_seen_it_and_a_real_rise():
    """Audit 12: replicate draws of one unchanged tumour near the limit gave 'progression' in 8 of 30 pairs."""
    near = later(plasma=(2.66, 0.12))
    blind = dataclasses.replace(CLEAN, detectable_plasma_copy_number=2.95)
    assert response(near, baseline=blind)["response"] == "not_evaluable"
    noisy = dataclasses.replace(CLEAN, plasma_copy_number=2.35, plasma_copy_number_ci95=interval(2.35, 0.12),
                                detectable_plasma_copy_number=2.6)
    assert response(near, baseline=noisy)["response"] == "stable"
    assert response(near, baseline=dataclasses.replace(noisy, plasma_copy_number=2.0,
                                                       plasma_copy_number_ci95=interval(2.0, 0.05)))["response"] \
        == "progression"


def test_no_relative_change_against_a_baseline_without_a_gain():
    assert response(later(), baseline=CLEAN)["excess_plasma_copy_number"]["relative"] is None


def test_flags_level_escalation_and_erbb2_negative_growth():
    low = dataclasses.replace(BASE, status="low_level_gain")
    assert any(f.startswith("level_escalation") for f in response(later(), baseline=low)["flags"])
    diluted = later(fraction=(0.35, 0.015), tumor_copy_number=12.0, tumor_copy_number_ci95=interval(12.0, 1.5))
    assert any(f.startswith("erbb2_negative_growth") for f in response(diluted)["flags"])
    # a tumour-fraction rise whose ERBB2 rise is merely not significant is no sign of an ERBB2-negative clone
    underpowered = later(fraction=(0.35, 0.015), tumor_copy_number_ci95=interval(20.0, 6.0))
    assert not any(f.startswith("erbb2_negative_growth") for f in response(underpowered)["flags"])


def test_copy_number_changes_need_calls_on_the_same_fragments():
    weighted = later(called_on="size_weighted", tumor_copy_number=2.0, tumor_copy_number_ci95=interval(2.0, 1.0))
    assert response(weighted)["tumor_copy_number"]["difference"] is None


def test_a_qc_failed_first_draw_leaves_the_next_as_baseline():
    failed = dataclasses.replace(BASE, sample="F", date="2026-01-01", qc_pass=False)
    rows = monitor.track_patient([failed, BASE, later(plasma=(2.9, 0.1))], THRESHOLDS)
    assert [row["baseline"] for row in rows] == [False, True, False]
    assert rows[0]["change_from_baseline"]["response"] == "not_evaluable"
    assert rows[0]["change_from_baseline"]["excess_plasma_copy_number"]["difference"] is None
    assert rows[2]["change_from_baseline"]["response"] == "molecular_response"


def test_re_emergence_after_clearance_is_flagged():
    gone = later(status="not_detected", gain_detected=False, plasma=(2.05, 0.1))
    back = dataclasses.replace(BASE, sample="R", date="2026-03-01")
    rows = monitor.track_patient([BASE, gone, back], THRESHOLDS)
    assert any(f.startswith("re_emergence") for f in rows[2]["change_from_baseline"]["flags"])
    # a draw that failed QC carries no flags: its gain_detected is not a measurement
    failed = dataclasses.replace(back, qc_pass=False, status="indeterminate")
    assert monitor.track_patient([BASE, gone, failed], THRESHOLDS)[2]["change_from_baseline"]["flags"] == []


def test_timepoints_are_ordered_by_date():
    rows = monitor.track_patient([later(), BASE], THRESHOLDS)
    assert [r["sample"] for r in rows] == ["B", "L"] and "change_from_baseline" not in rows[0]


def test_series_from_other_panels_or_repeated_dates_are_refused():
    with pytest.raises(InputError, match="another panel of normals"):
        monitor.check_comparable([BASE, later(pon_checksum="other")], ["a.json", "b.json"])
    with pytest.raises(InputError, match="date 2026-01-05 repeats"):
        monitor.check_comparable([BASE, later(date="2026-01-05")], ["a.json", "b.json"])
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        monitor.check_date("21/01/2026", "--dates")


def test_report_escapes_strings_from_its_inputs():
    call = {"format": "her2cnv.call/1", "sample": "S<1>", "erbb2": {
        "status": "indeterminate", "reason": "<script>alert(1)</script>", "plasma_copy_number": 2.0,
        "plasma_copy_number_ci95": [1.9, 2.1], "tumor_copy_number": None, "tumor_copy_number_ci95": None,
        "focal": None, "amplicon": None, "limit_of_detection_copy_number": None},
        "tumor_fraction": {"detected": False, "detection_limit": 0.05, "estimate": None, "ci95": None,
                           "method": "copy-number fit"},
        "qc": {"pass": False, "reasons": ["<b>bad</b>"], "noise_mapd": 0.1}, "provenance": {"version": "x"}}
    page = report.render_sample_report(call, {})
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>bad</b>" not in page and "S&lt;1&gt;" in page
    assert "http" not in page.lower().replace("http-equiv", "")  # nothing external is loaded


def test_report_says_when_a_size_weighted_share_was_not_used():
    """The sample report shows the second look's tumour share, and says so when it lay above its ceiling."""
    weighted = {"detected": True, "estimate": 0.035, "ci95": [0.025, 0.045], "ceiling": 0.062, "above_ceiling": False}
    fraction = {"detected": False, "detection_limit": 0.029, "size_weighted": weighted}
    assert report._tumor_fraction_text(fraction) == (
        "below detection (&lt; 2.9%); tumour share of size-weighted fragments 3.5% (2.5%&ndash;4.5%)")
    fraction["size_weighted"] = {**weighted, "estimate": 0.0725, "ci95": [0.0425, 0.0975], "above_ceiling": True}
    assert report._tumor_fraction_text(fraction).endswith(
        "7.2% (4.2%&ndash;9.8%), above the 6.2% a tumour fraction below detection allows: not used")


def test_a_change_is_measured_against_the_interval_halves_that_face_each_other():
    """Below a rise the change's SE comes from the later value's lower half and the earlier one's upper half;
    z uses that side, and the change's interval is asymmetric as its parts are."""
    rise = monitor.change(3.0, 2.0, (2.5, 4.0), (1.8, 2.1))
    below, above = np.hypot(0.5, 0.1) / Z95, np.hypot(1.0, 0.2) / Z95
    assert rise["z_score"] == pytest.approx(1.0 / below)
    assert rise["ci95"] == pytest.approx((1.0 - Z95 * below, 1.0 + Z95 * above))
    fall = monitor.change(2.0, 3.0, (1.8, 2.1), (2.5, 4.0))
    assert fall["z_score"] == pytest.approx(-1.0 / below)


def test_an_arm_level_reading_against_a_resolved_core_is_not_progression():
    """Validation grid, WGS TF 10% CN 8 under a 17q gain, two replicate draws: one read at the arm's level
    (interval widened up to the core's), one at the resolved core. The full-width SEs gave z 2.1 and a +718%
    'progression'; the facing halves (the first's upper, the second's lower) see no change."""
    arm_level = dataclasses.replace(BASE, status="indeterminate", plasma_copy_number=2.0904,
                                    plasma_copy_number_ci95=(2.0434, 2.7310))
    core = later(status="indeterminate", plasma_copy_number=2.7396, plasma_copy_number_ci95=(2.2746, 3.2996))
    assert response(core, baseline=arm_level)["response"] == "stable"
    assert abs(response(core, baseline=arm_level)["excess_plasma_copy_number"]["z_score"]) < 1.96


def test_plasma_copy_number_interval_comes_from_the_call_not_the_segment_se():
    """ERBB2 in an arm-scale segment: a tight segment SE, an interval widened to the core's bins."""
    document = {"sample": "S", "qc": {"pass": True}, "provenance": {"inputs": {"pon": {"checksum": "p"},
                                                                               "bins_checksum": "b"}},
                "tumor_fraction": {"detected": True, "estimate": 0.1, "ci95": [0.08, 0.12], "detection_limit": 0.03},
                "erbb2": {"status": "indeterminate", "gain_detected": False, "plasma_copy_number": 2.02,
                          "plasma_copy_number_ci95": [2.0, 2.6], "log2_ratio_se": 0.005,
                          "detectable_plasma_copy_number": 2.7, "tumor_copy_number": 2.2,
                          "tumor_copy_number_ci95": [2.0, 8.0], "called_on": "all"}}
    point = monitor.timepoint(document, "2026-01-05", "S.call.json")
    assert point.plasma_copy_number_ci95 == (2.0, 2.6)
    assert point.tumor_copy_number_ci95 == (2.0, 8.0)
