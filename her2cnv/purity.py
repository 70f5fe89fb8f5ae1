"""Tumour fraction from genome-wide segments, by fitting clonal integer copy states (as ichorCNA does).

A segment of tumour copy number ``c`` in plasma of tumour fraction ``p`` has copy
ratio ``(2(1-p) + p c) / 2`` relative to the diploid level, so its log2 ratio is
``log2((2(1-p) + p c) / 2) + baseline``; ``baseline`` is where the diploid state
sits in the profile (the profile is centred on its median bin, which is not
diploid when the tumour is aneuploid). For every ``p`` on a grid and every
baseline, each segment takes its best state ``c`` in 1..max_copy_state; the score is

    sum over segments of cost(z) + penalty x |c - 2|,  z = (m - expected) / sqrt(se^2 + error^2)

``cost`` is the deviance of a Student t with ``STUDENT_T_DEGREES`` degrees of
freedom, ``(nu + 1) log(1 + z^2 / nu)``: about ``z^2`` for small misfits, but one
odd segment (a GC residual of one sample, a mosaic or clonal-haematopoiesis
event, a subclonal change) adds only a few units however far off it is, so it can
neither create a tumour fraction on its own nor drag a good fit to a
whole-genome-doubled reading (ichorCNA also uses t emissions). ``error`` is the
model-error floor: the panel of normals' arm-level error (``pon.arm_level_error``,
what its cross-fitted normals show beyond their standard errors) or the
``segment_error_floor`` threshold, whichever is larger. The penalty favours
single-copy arm events over many-copy explanations of small shifts. The best
``p`` must beat the flat genome (all diploid, its own best baseline) by
``min_fit_improvement`` to count as detected; its 95% interval is where the
profiled score stays within 3.84 x the fit's overdispersion of the best. Segments
overlapping the ERBB2 locus are left out: the amplicon's copy number is what we
want to measure, not a clue to ``p``.

Ploidy. The fit reads the profile's baseline as two copies and its steps as
one copy each, the most parsimonious reading. A depth profile cannot tell it from a
genome-doubled one: a tumour whose baseline holds ``m`` copies and whose every
step is ``s`` copies gives exactly the same levels at another tumour fraction
(``PloidyReading``), so its likelihood is the same, and only allelic data or an
orthogonal tumour fraction can choose. A fit carries its readings, the diploid one
first and the ``POLYPLOID_READINGS`` after it (near-triploid, and tetraploid with
single- or doubled-copy steps); call.classify makes no call that one of them would
reverse. An external tumour fraction keeps the readings it agrees with.

Below detection we report a limit: the tumour fraction at which single-copy gains
of two chromosome arms of median size would have given the required improvement
(with t costs one arm alone needs a far larger shift). This assumes the tumour has
at least two arm-level events, as the ~85% of colorectal cancers with chromosomal
instability do (they carry many more); a tumour with a flat genome can hide at any
fraction, so "below detection" is never "absent".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bins import arm_masks, canonical_contig
from .types import Assembly, Bins, Panel, Segments, Thresholds

FRACTION_GRID = np.round(np.arange(0.01, 0.9501, 0.0025), 4)
BASELINE_COARSE = np.arange(-0.6, 0.6001, 0.01)
BASELINE_FINE = np.arange(-0.01, 0.01001, 0.0005)
MAPD_TO_SD = 1.0 / (0.6745 * np.sqrt(2.0))  # MAPD of Gaussian neighbours -> per-bin SD
CHI2_95 = 3.841
STUDENT_T_DEGREES = 4.0
EVENTS_AT_LIMIT = 2  # the detection limit assumes this many single-copy arm events


def segment_cost(z_squared: np.ndarray) -> np.ndarray:
    """Student-t deviance of standardised misfits: ``z^2`` near 0, logarithmic in the tails."""
    return (STUDENT_T_DEGREES + 1) * np.log1p(z_squared / STUDENT_T_DEGREES)


def _gaussian_mean_cost() -> float:
    """Expected ``segment_cost`` of a standard normal misfit (Gauss-Hermite quadrature): the residual score
    per segment of a fit whose errors are as stated, the unit of the fit's overdispersion."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(weights * segment_cost(nodes ** 2)) / np.sqrt(2 * np.pi))


GAUSSIAN_MEAN_COST = _gaussian_mean_cost()


# The other readings of a fitted profile reported beside it (PloidyReading): (tumour copies at the fit's
# two-copy baseline, tumour copies per fitted one-copy step). Near-triploid, and whole-genome-doubled with
# the later changes single-copy or, when they preceded the doubling, doubled.
POLYPLOID_READINGS = ((3, 1), (4, 1), (4, 2))

# An external tumour fraction conflicts with the sample's own copy-number fit beyond 0.03 absolute and 20%
# relative: the accuracy the issue asks of the fit, and which it reaches on the validation grid at TF >= 5%.
EXTERNAL_AGREEMENT = (0.03, 0.2)


@dataclass(frozen=True)
class PloidyReading:
    """The profile read with ``baseline_copy_number`` tumour copies at its baseline level (the fit's two-copy
    level) at tumour fraction ``fraction``: call.copy_number_at turns any level into tumour copies under it.

    Readings of a fit: a step of one copy at fraction ``p'`` on a diploid baseline changes the level by ``p'/2``
    of the baseline; ``s`` (``copies_per_step``) copies at fraction ``p`` on a baseline of ``m`` copies by
    ``s p / (2(1-p) + p m)``. Equal when ``p = 2u / (1 - u(m - 2))`` with ``u = p' / (2s)``, and every copy
    number the diploid reading gives as ``c`` is then ``m + s(c - 2)``. Given an external fraction, the
    baseline's copies alone fix the copy numbers; the step is kept from the fit's reading, or None where the
    sample's own fit detected no tumour DNA.
    """

    baseline_copy_number: int
    copies_per_step: int | None
    fraction: float
    fraction_ci95: tuple[float, float]
    ploidy: float | None  # length-weighted mean tumour copy number of the fitted segments under this reading


def fitted_readings(fraction: float, ci95: tuple[float, float], ploidy: float) -> tuple[PloidyReading, ...]:
    """The diploid reading of a fit at ``fraction`` (its interval, its mean fitted copy number), then its
    ``POLYPLOID_READINGS`` that need a tumour fraction no larger than ``FRACTION_GRID``'s largest (intervals
    are capped there too)."""

    def convert(diploid_fraction, baseline, step):
        u = diploid_fraction / (2 * step)
        denominator = 1 - u * (baseline - 2)
        return 2 * u / denominator if denominator > 0 else np.inf

    largest = float(FRACTION_GRID[-1])
    readings = [PloidyReading(2, 1, fraction, ci95, ploidy)]
    for baseline, step in POLYPLOID_READINGS:
        estimate = convert(fraction, baseline, step)
        if estimate <= largest:
            interval = (float(convert(ci95[0], baseline, step)), min(largest, float(convert(ci95[1], baseline, step))))
            readings.append(PloidyReading(baseline, step, float(estimate), interval, baseline + step * (ploidy - 2)))
    return tuple(readings)


@dataclass(frozen=True)
class TumorFractionFit:
    estimate: float | None  # None when below detection (or unknown)
    ci95: tuple[float, float] | None
    detected: bool
    limit: float  # TF below which this sample's profile would look flat
    baseline_log2: float  # log2 level of the diploid state in the profile
    ploidy: float | None  # length-weighted mean fitted tumour copy number
    method: str  # "copy-number fit" or "external"
    fit_improvement: float
    n_segments: int
    model_error: float  # log2 error floor added to every segment's SE (also to ERBB2's segment level)
    fragments: str = "all"  # the channel fitted (normalize.CHANNELS): "size_weighted" for call.py's second look
    ceiling: float | None = None  # second look: the largest estimate the all-fragment fit leaves plausible
    conflict: str | None = None  # external: how the sample's own copy-number fit contradicts the value given
    # detected: the readings the tumour copy number is read under, the reported one first (fitted_readings;
    # external_tumor_fraction); empty when below detection
    readings: tuple[PloidyReading, ...] = ()

    @property
    def above_ceiling(self) -> bool:
        """Detected, but at an estimate tumour DNA cannot give (call.analyse does not use it)."""
        return self.detected and self.ceiling is not None and self.estimate > self.ceiling

    def describe(self) -> str:
        """The fit as a call's reason names it."""
        share = "tumour fraction" if self.fragments == "all" else "tumour share of size-weighted fragments"
        if self.detected:
            return f"{share} {self.estimate:.1%} ({self.method})"
        return f"{share} below detection (< {self.limit:.1%})"


def expected_log2(fraction: float, states: np.ndarray) -> np.ndarray:
    return np.log2((2 * (1 - fraction) + fraction * states) / 2)


def model_error(panel: Panel, thresholds: Thresholds) -> float:
    """The larger of the panel's measured arm-level error and the configured floor."""
    return max(panel.arm_level_error, thresholds.segment_error_floor)


def _segment_table(segments: Segments, bins: Bins, assembly: Assembly, thresholds: Thresholds, error: float):
    """Means, variances and lengths of the segments that inform the fit."""
    locus_chrom, locus_start, locus_end = assembly.locus
    starts = bins.start[segments.first_bin]
    ends = bins.end[np.maximum(segments.end_bin - 1, segments.first_bin)]
    on_locus = np.array([canonical_contig(c) == canonical_contig(locus_chrom) for c in segments.chrom.tolist()])
    overlaps_locus = on_locus & (starts < locus_end) & (ends > locus_start)
    keep = (~overlaps_locus & (segments.n_bins >= thresholds.min_segment_bins) & np.isfinite(segments.log2_ratio))
    standard_error = (segments.ci_high - segments.ci_low) / (2 * 1.96)
    variance = standard_error[keep] ** 2 + error ** 2
    return segments.log2_ratio[keep], variance, segments.n_bins[keep].astype(float)


def _best_states(means, variances, fraction, baselines, max_state, penalty):
    """Score of the best state assignment for each baseline; returns (scores, states).

    States start at 1: the fitted segments span >= 1 Mb, and a homozygous deletion that large is not
    viable, while allowing it lets a shifted baseline mimic a lower tumour fraction.
    """
    states = np.arange(1, max_state + 1)
    predicted = expected_log2(fraction, states)[None, None, :] + baselines[:, None, None]
    cost = segment_cost((means[None, :, None] - predicted) ** 2 / variances[None, :, None]) + penalty * np.abs(states - 2)
    best = np.argmin(cost, axis=2)
    return np.take_along_axis(cost, best[..., None], axis=2)[..., 0].sum(axis=1), states[best]


def _profile_fraction(means, variances, fraction, thresholds):
    """Best score over baselines for one tumour fraction: (score, baseline, states)."""
    scores, _ = _best_states(means, variances, fraction, BASELINE_COARSE, thresholds.max_copy_state,
                             thresholds.state_penalty)
    fine = BASELINE_COARSE[np.argmin(scores)] + BASELINE_FINE
    scores, states = _best_states(means, variances, fraction, fine, thresholds.max_copy_state, thresholds.state_penalty)
    best = int(np.argmin(scores))
    return float(scores[best]), float(fine[best]), states[best]


def detection_limit(noise: float, bins_per_arm: float, error: float, thresholds: Thresholds) -> float:
    """The TF at which ``EVENTS_AT_LIMIT`` single-copy arm gains would reach ``min_fit_improvement``."""
    standard_error = np.sqrt((noise * MAPD_TO_SD) ** 2 / max(bins_per_arm, 1.0) + error ** 2)
    per_event = thresholds.min_fit_improvement / EVENTS_AT_LIMIT + thresholds.state_penalty
    needed_z = np.sqrt(STUDENT_T_DEGREES * np.expm1(per_event / (STUDENT_T_DEGREES + 1)))
    return float(min(2 * (2 ** (standard_error * needed_z) - 1), 1.0))


def median_bins_per_arm(bins: Bins, usable: np.ndarray, assembly: Assembly) -> float:
    """Median number of usable genome bins per chromosome arm (arms with any usable bins)."""
    counts = [int(arm.sum()) for arm in arm_masks(bins, usable, assembly)]
    return float(np.median(counts)) if counts else 1.0


def fit_tumor_fraction(segments: Segments, bins: Bins, usable: np.ndarray, noise: float, assembly: Assembly,
                       thresholds: Thresholds, error: float) -> TumorFractionFit:
    """Fit tumour fraction and the diploid baseline to the genome-wide segments (``error``: ``model_error``)."""
    means, variances, lengths = _segment_table(segments, bins, assembly, thresholds, error)
    limit = detection_limit(noise, median_bins_per_arm(bins, usable, assembly), error, thresholds)
    if len(means) == 0:
        return TumorFractionFit(None, None, False, limit, 0.0, None, "copy-number fit", 0.0, 0, error)
    flat_score, flat_baseline, _ = _profile_fraction(means, variances, 0.0, thresholds)
    fits = [_profile_fraction(means, variances, f, thresholds) for f in FRACTION_GRID]
    scores = np.array([score for score, _, _ in fits])
    best = int(np.argmin(scores))
    score, baseline, states = fits[best]
    improvement = flat_score - score
    fraction = float(FRACTION_GRID[best])
    if improvement < thresholds.min_fit_improvement or fraction < thresholds.min_reportable:
        return TumorFractionFit(None, None, False, limit, flat_baseline, None, "copy-number fit",
                                float(improvement), len(means), error)
    residual = score - thresholds.state_penalty * np.abs(states - 2).sum()
    overdispersion = max(1.0, residual / (max(len(means) - 2, 1) * GAUSSIAN_MEAN_COST))
    accepted = FRACTION_GRID[scores - score <= CHI2_95 * overdispersion]
    ploidy = float(np.sum(states * lengths) / np.sum(lengths))
    interval = (float(accepted.min()), float(accepted.max()))
    return TumorFractionFit(fraction, interval, True, limit, baseline, ploidy, "copy-number fit",
                            float(improvement), len(means), error, readings=fitted_readings(fraction, interval, ploidy))


def external_tumor_fraction(value: float, segments: Segments, bins: Bins, usable: np.ndarray, noise: float,
                            assembly: Assembly, thresholds: Thresholds, error: float) -> TumorFractionFit:
    """A tumour fraction given by the user (e.g. from the highest somatic variant allele fraction).

    The value chooses among the readings of the sample's own fit: those whose fraction it agrees with (within
    the fit's validated accuracy, ``EXTERNAL_AGREEMENT``, or their intervals) are kept, at ``value``, on the
    fit's baseline; the diploid first if it is among them, else the nearest. At a low fraction the diploid,
    near-triploid and single-step tetraploid readings need nearly the same fraction, and all are kept. When
    the fit agrees with none, one of the two is wrong, and ``conflict`` says so. When the fit detects no tumour
    DNA, the baseline is fitted at ``value`` and every baseline copy number stays possible (2, 3 and 4).
    """
    own = fit_tumor_fraction(segments, bins, usable, noise, assembly, thresholds, error)
    absolute, relative = EXTERNAL_AGREEMENT

    def agrees(reading):
        low, high = reading.fraction_ci95
        return abs(reading.fraction - value) <= max(absolute, relative * reading.fraction) or low <= value <= high

    conflict = None
    if own.detected:
        baseline, candidates = own.baseline_log2, [r for r in own.readings if agrees(r)]
        if not candidates:
            others = " or ".join(f"{r.fraction:.1%}" for r in own.readings[1:])
            conflict = (f"the tumour fraction given, {value:.1%}, disagrees with this sample's copy-number fit, "
                        f"{own.estimate:.1%} (95% CI {own.ci95[0]:.1%}-{own.ci95[1]:.1%})"
                        + (f", or {others} read polyploid" if others else ""))
            candidates = list(own.readings[:1])
        candidates.sort(key=lambda r: (r.baseline_copy_number != 2, abs(r.fraction - value)))
    else:
        means, variances, _ = _segment_table(segments, bins, assembly, thresholds, error)
        baseline = _profile_fraction(means, variances, value, thresholds)[1] if len(means) else 0.0
        candidates = [PloidyReading(copies, None, value, (value, value), None) for copies in (2, 3, 4)]
    readings, seen = [], set()
    for reading in candidates:  # one per baseline copy number: at a given fraction the step does not matter
        if reading.baseline_copy_number not in seen:
            seen.add(reading.baseline_copy_number)
            readings.append(PloidyReading(reading.baseline_copy_number, reading.copies_per_step, value,
                                          (value, value), reading.ploidy))
    return TumorFractionFit(value, (value, value), True, own.limit, baseline, readings[0].ploidy, "external", 0.0,
                            own.n_segments, error, conflict=conflict, readings=tuple(readings))
