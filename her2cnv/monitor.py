"""Supporting functions for the 'monitor' command: how a patient's ERBB2 signal moves under therapy.

Each timepoint after the first is compared with the first (the baseline) on
excess plasma copy number ``PCN - 2`` (the ERBB2 signal above the diploid
background, which falls to 0 when the tumour DNA clears), tumour fraction and
tumour copy number. A change counts as real when it exceeds measurement noise:
``z = change / sqrt(se_baseline^2 + se_later^2)``, two-sided at
``min_change_z_score`` (1.96, ~5%), where each SE is the half of that call's
own 95% interval that faces the other value, divided by 1.96. The intervals are
asymmetric (PCN through 2^level; tumour CN through 1/TF; ERBB2 inside an
arm-scale segment, whose interval also takes in the amplicon core's), and only
the side facing the other measurement bears on whether they differ: a
full-width SE let an arm-level reading and a core-level one of the same tumour
pass for a +700% rise. The test assumes the two measurements' errors are
independent and roughly normal; it does not model biological day-to-day
variation.

Response categories, against the baseline (the first timepoint that passed QC; thresholds in
reference/thresholds.toml):

- ``not_evaluable``: QC failed at baseline or at this timepoint, or a gain appeared or vanished
  where the other sample could not have detected the level.
- ``clearance``: ERBB2 gain detected at baseline, not detected now, and this
  sample could have detected the baseline level (its detectable plasma copy
  number is below the baseline's). HERALD: clearance at cycle 2 day 1 went with response.
- ``molecular_response``: a significant fall of at least ``response_fraction``
  (30%) in excess PCN. Parikh 2020: a >= 30% fall at 4 weeks predicted response.
- ``progression``: a significant rise of at least ``progression_fraction`` in
  excess PCN, or a gain detected now where none was at baseline, significantly
  above it, and at a level the baseline could have detected.
- ``stable``: anything else (including too little power to see a change).

Flags mark what the category alone hides: a low-level gain becoming high-level,
re-emergence after a clearance, and a significant rise of tumour fraction with a
significant fall of tumour copy number (an ERBB2-negative clone growing),
distinct from ERBB2 progression.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .types import Thresholds, check_safe_name

Z95 = 1.959964
MONITOR_THRESHOLDS = ("response_fraction", "progression_fraction", "min_change_z_score")


def check_date(text: str | None, source: str) -> str | None:
    """An ISO collection date (YYYY-MM-DD), or None."""
    if text is None:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):  # fromisoformat takes 20260105 and 2026-W01-1 too
            raise ValueError
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise InputError(f"{source}: {text!r} is not a date in YYYY-MM-DD form") from None


def check_patient(name: str | None, source: str = "--patient") -> str | None:
    if name is None:
        return None
    try:
        return check_safe_name(name, "patient name")
    except ValueError as error:
        raise InputError(f"{source}: {error}") from None


@dataclass(frozen=True)
class Timepoint:
    """What monitoring needs from one SAMPLE.call.json."""

    sample: str
    date: str
    status: str
    qc_pass: bool
    gain_detected: bool
    plasma_copy_number: float
    plasma_copy_number_ci95: tuple[float, float] | None
    detectable_plasma_copy_number: float | None
    tumor_fraction: float | None
    tumor_fraction_ci95: tuple[float, float] | None
    tumor_fraction_limit: float | None
    tumor_copy_number: float | None
    tumor_copy_number_ci95: tuple[float, float] | None
    pon_checksum: str | None
    bins_checksum: str | None
    called_on: str  # the fragments the ERBB2 measurement came from: "all", or "size_weighted" (second look)
    thresholds: dict | None  # the call's classification thresholds


def _interval(interval) -> tuple[float, float] | None:
    if not interval or interval[0] is None or interval[1] is None:
        return None
    return float(interval[0]), float(interval[1])


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def timepoint(document: dict, date: str, source: str) -> Timepoint:
    """Pull the monitored quantities out of a call document (``io.read_call`` checked its format)."""
    try:
        erbb2, fraction, inputs = document["erbb2"], document["tumor_fraction"], document["provenance"]["inputs"]
        plasma = erbb2["plasma_copy_number"]
        return Timepoint(
            sample=document["sample"], date=date, status=erbb2["status"], qc_pass=bool(document["qc"]["pass"]),
            gain_detected=bool(erbb2["gain_detected"]),
            plasma_copy_number=_nan_if_none(plasma),
            # the interval, not log2_ratio_se: for ERBB2 inside an arm-scale segment the interval also spans
            # the amplicon core's own measurement (call.py)
            plasma_copy_number_ci95=None if plasma is None else _interval(erbb2["plasma_copy_number_ci95"]),
            detectable_plasma_copy_number=erbb2["detectable_plasma_copy_number"],
            tumor_fraction=fraction["estimate"] if fraction["detected"] else None,
            tumor_fraction_ci95=_interval(fraction["ci95"]) if fraction["detected"] else None,
            tumor_fraction_limit=fraction["detection_limit"],
            tumor_copy_number=erbb2["tumor_copy_number"],
            tumor_copy_number_ci95=_interval(erbb2["tumor_copy_number_ci95"]),
            pon_checksum=(inputs.get("pon") or {}).get("checksum"), bins_checksum=inputs.get("bins_checksum"),
            called_on=erbb2["called_on"], thresholds=document["provenance"].get("parameters", {}).get("thresholds"),
        )
    except (KeyError, TypeError) as error:
        raise InputError(f"{source}: call file lacks {error} (not a complete her2cnv call?)") from None


def check_comparable(timepoints: list[Timepoint], sources: list[str]) -> None:
    """Refuse series whose calls used different panels of normals or bins, or repeat a sample or date."""
    first = timepoints[0]
    for point, source in zip(timepoints[1:], sources[1:]):
        if point.pon_checksum != first.pon_checksum:
            raise InputError(f"{source}: called with another panel of normals than {sources[0]}; "
                             "re-call every timepoint with one panel so their levels are comparable")
        if point.bins_checksum != first.bins_checksum:
            raise InputError(f"{source}: counted with other bins than {sources[0]}")
        if _call_thresholds(point) != _call_thresholds(first):
            raise InputError(f"{source}: called with other thresholds (--thresholds) than {sources[0]}; "
                             "re-call every timepoint with one set")
    for key, label in ((lambda p: p.sample, "sample"), (lambda p: p.date, "date")):
        seen = {}
        for point, source in zip(timepoints, sources):
            if key(point) in seen:
                raise InputError(f"{source}: {label} {key(point)} repeats {seen[key(point)]}")
            seen[key(point)] = source


def _call_thresholds(point: Timepoint) -> dict:
    """The thresholds a call used, without monitor's own, which change no call (monitor applies its own)."""
    return {key: value for key, value in (point.thresholds or {}).items() if key not in MONITOR_THRESHOLDS}


def change(later: float | None, earlier: float | None, later_ci95: tuple[float, float] | None,
           earlier_ci95: tuple[float, float] | None) -> dict:
    """Difference, its 95% interval and z (None where either value is missing).

    Below the difference its SE combines the lower half of ``later``'s interval with the upper half of
    ``earlier``'s, above it the other two halves; z uses the side that faces no change.
    """
    if later is None or earlier is None or not np.isfinite([later, earlier]).all():
        return {"difference": None, "ci95": None, "z_score": None}
    later_low, later_high = later_ci95 or (later, later)
    earlier_low, earlier_high = earlier_ci95 or (earlier, earlier)
    difference = later - earlier
    below = float(np.hypot(max(later - later_low, 0.0), max(earlier_high - earlier, 0.0))) / Z95
    above = float(np.hypot(max(later_high - later, 0.0), max(earlier - earlier_low, 0.0))) / Z95
    se = below if difference >= 0 else above
    return {"difference": difference, "ci95": (difference - Z95 * below, difference + Z95 * above),
            "z_score": difference / se if se > 0 else None}


def relative_change(baseline: Timepoint, excess: dict) -> float | None:
    """The change in excess PCN as a fraction of the baseline's excess: only where the baseline has a gain (a
    baseline excess of noise made +27386%)."""
    baseline_excess = baseline.plasma_copy_number - 2
    if excess["difference"] is None or not baseline.gain_detected or baseline_excess <= 0:
        return None
    return excess["difference"] / baseline_excess


def respond(baseline: Timepoint, point: Timepoint, excess: dict, thresholds: Thresholds) -> tuple[str, str]:
    """The response category and its reason. Every monitoring rule is here."""
    if not (baseline.qc_pass and point.qc_pass):
        failed = [p.sample for p in (baseline, point) if not p.qc_pass]
        return "not_evaluable", f"QC failed for {', '.join(failed)}."
    z = excess["z_score"]
    significant = z is not None and abs(z) >= thresholds.min_change_z_score
    relative = relative_change(baseline, excess)
    if baseline.gain_detected and not point.gain_detected:
        if point.detectable_plasma_copy_number is not None and \
                point.detectable_plasma_copy_number <= baseline.plasma_copy_number:
            scarce = "" if point.tumor_fraction is not None else \
                ("; tumour DNA is below detection too, so whether the tumour still carries the amplification "
                 "cannot be told from this sample")
            return "clearance", (f"ERBB2 gain no longer detected in plasma (baseline PCN "
                                 f"{baseline.plasma_copy_number:.2f}; this sample would have detected PCN >= "
                                 f"{point.detectable_plasma_copy_number:.2f}){scarce}.")
        return "not_evaluable", ("ERBB2 gain not detected, but this sample could not have detected the baseline "
                                 "level: too little power to call clearance.")
    if not baseline.gain_detected:
        if not point.gain_detected:
            return "stable", "No ERBB2 gain at baseline or now."
        # the mirror of clearance: the baseline must have been able to see this level, and the rise be real
        if baseline.detectable_plasma_copy_number is None or \
                baseline.detectable_plasma_copy_number > point.plasma_copy_number:
            return "not_evaluable", (f"ERBB2 gain detected now (PCN {point.plasma_copy_number:.2f}), but the "
                                     "baseline could not have detected that level: too little power to call "
                                     "progression.")
        if not (significant and z > 0):
            return "stable", (f"ERBB2 gain detected now (PCN {point.plasma_copy_number:.2f}), but the rise from "
                              f"baseline (PCN {baseline.plasma_copy_number:.2f}, z {_signed(z)}) is within "
                              "measurement noise.")
        return "progression", (f"ERBB2 gain newly detected: PCN {baseline.plasma_copy_number:.2f} -> "
                               f"{point.plasma_copy_number:.2f} (z {z:+.1f}).")
    text = (f"excess PCN {baseline.plasma_copy_number - 2:.2f} -> {point.plasma_copy_number - 2:.2f} "
            f"({relative:+.0%}, z {z:+.1f})") if relative is not None and z is not None else "no comparable level"
    if significant and relative is not None and relative <= -thresholds.response_fraction:
        return "molecular_response", f"Significant fall in ERBB2 signal: {text}."
    if significant and relative is not None and relative >= thresholds.progression_fraction:
        return "progression", f"Significant rise in ERBB2 signal: {text}."
    return "stable", f"No change beyond the thresholds: {text}."


def _signed(z: float | None) -> str:
    return "n/a" if z is None else f"{z:+.1f}"


def flags(point: Timepoint, baseline: Timepoint, fraction: dict, copies: dict, thresholds: Thresholds,
          earlier_responses: list[str]) -> list[str]:
    """What the category alone does not say (nothing for a draw that failed QC: its values are not measurements)."""
    if not (point.qc_pass and baseline.qc_pass):
        return []
    notes = []
    if baseline.status == "low_level_gain" and point.status == "high_level_amplification":
        notes.append("level_escalation: low-level gain at baseline is now a high-level amplification")
    if "clearance" in earlier_responses and point.gain_detected:
        notes.append("re_emergence: ERBB2 gain detected again after a clearance")
    # An ERBB2-negative clone dilutes the amplified cells: the tumour copy number (an average over tumour cells)
    # falls while the tumour fraction rises. An ERBB2 rise that merely fails to reach significance is no sign.
    minimum = thresholds.min_change_z_score
    if baseline.gain_detected and (fraction["z_score"] or 0.0) >= minimum and (copies["z_score"] or 0.0) <= -minimum:
        notes.append("erbb2_negative_growth: tumour fraction rose while the tumour's ERBB2 copy number fell "
                     "(an ERBB2-negative clone may be growing)")
    return notes


def track_patient(timepoints: list[Timepoint], thresholds: Thresholds) -> list[dict]:
    """Per timepoint (by date), its values and the change from baseline with a response category.

    The baseline is the first timepoint that passed QC (the first, if none did): a failed first draw
    must not leave two good later ones unevaluable. Changes are left out where either call failed QC,
    and the tumour-copy-number change where the two were measured on different fragments (all, or the
    size-weighted second look, whose copy numbers are shares of weighted fragments)."""
    ordered = sorted(timepoints, key=lambda p: p.date)
    baseline = next((point for point in ordered if point.qc_pass), ordered[0])
    rows, responses = [], []
    for point in ordered:
        row = {"sample": point.sample, "date": point.date, "status": point.status,
               "plasma_copy_number": point.plasma_copy_number, "tumor_fraction": point.tumor_fraction,
               "tumor_copy_number": point.tumor_copy_number, "qc_pass": point.qc_pass,
               "baseline": point is baseline}
        if point is not baseline:
            measured = point.qc_pass and baseline.qc_pass
            excess = change(point.plasma_copy_number if measured else None, baseline.plasma_copy_number,
                            point.plasma_copy_number_ci95, baseline.plasma_copy_number_ci95)
            fraction = change(point.tumor_fraction if measured else None, baseline.tumor_fraction,
                              point.tumor_fraction_ci95, baseline.tumor_fraction_ci95)
            alike = measured and point.called_on == baseline.called_on
            copies = change(point.tumor_copy_number if alike else None, baseline.tumor_copy_number,
                            point.tumor_copy_number_ci95, baseline.tumor_copy_number_ci95)
            response, reason = respond(baseline, point, excess, thresholds)
            row["change_from_baseline"] = {
                "response": response, "reason": reason,
                "excess_plasma_copy_number": {**excess, "relative": relative_change(baseline, excess)},
                "tumor_fraction": fraction, "tumor_copy_number": copies,
                "flags": flags(point, baseline, fraction, copies, thresholds, responses),
            }
            responses.append(response)
        rows.append(row)
    return rows
