"""Supporting functions for the 'call' command: ERBB2 level, focality and status.

Measurement. ERBB2's level is the level of the segment that holds all of its
bins: segmentation found no change inside it, so the whole segment (for a focal
amplicon, all of the amplicon) measures ERBB2, far more precisely than the 42 kb
gene alone. If the amplicon core's own bins (PGAP3-ERBB2-MIEN1-GRB7, ~80 kb, which
every real ERBB2 amplicon contains) differ significantly from their segment
(segmentation missed a small event), or ERBB2 straddles a boundary, the core's bins
are used, but only if ERBB2's own bins agree with the core's other bins: an amplicon
may end inside the core, next to ERBB2 without containing it, and ERBB2 is then
measured on its own bins. The limit of detection is for an amplification of the core.

Intervals. A segment's SE is never less than its own bins' scatter says, and it
carries the tumour-fraction fit's model error and the error of the sample's own
fitted GC curve at the segment's GC (``normalize.gc_curve``): bins of one GC share
one correction, so that error does not shrink with more bins. A segment longer than the
largest focal span (an arm, say) vouches for ERBB2 only if no amplicon too small
or weak to segment lies inside it, so ERBB2's interval is then widened to take
in the core's own interval as well.

Levels are relative to the baseline from the tumour-fraction fit (its two-copy
level), so plasma copy number ``PCN = 2 x 2^level``, and for a clonal event under
a reading with ``m`` tumour copies at that baseline the tumour copy number is
``[R (2(1 - TF) + TF m) - 2(1 - TF)] / TF``, ``R = PCN / 2`` (``copy_number_at``;
reference/SOURCES.md), which is ``2 + (PCN - 2) / TF`` read diploid. A depth
profile cannot tell a diploid tumour from a polyploid one (purity.PloidyReading),
so every quantity is read under each reading the fit carries, and ``classify``
makes a call only if it holds under all of them. For a fit's own readings the
diploid one gives the fewest copies, so a high-level call never depends on them.

Second look. When all fragments show no tumour DNA, ``analyse`` repeats the
whole measurement on the size-weighted channel (``normalize.CHANNELS``), whose
tumour share is larger; a tumour share and an ERBB2 level measured on the same
weighted fragments give the tumour copy number by the same formula, with no need
to know the enrichment. If it detects the tumour DNA, it makes the call.

The classification rules are all in ``classify``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

from . import normalize, purity
from .bins import arm_index, canonical_contig
from .segment import neighbour_overdispersion, segment_profile
from .types import Assembly, Bins, Erbb2Call, FragmentCounts, Panel, Profile, Segments, Thresholds

Z95 = 1.959964
# When ERBB2 is measured on the core because the core departed from its segment, the measurement was chosen
# from two after looking at the data; its interval is widened Bonferroni-style to 97.5% (two choices).
Z_CHOSEN = 2.241403
MIN_NULL_NORMALS = 5
# What the amplicon's reported boundaries are, by what ERBB2 was measured on.
BOUNDARIES = {"segment": "segment", "core": "amplicon core bins (not resolved)",
              "gene": "ERBB2's own bins (an amplicon boundary lies inside the amplicon core)"}


def span_overlap(bins: Bins, start: int, end: int) -> np.ndarray:
    """Fraction of each bin covered by chr17:[start, end) (0 for bins elsewhere)."""
    on_17 = np.array([canonical_contig(c) == "17" for c in bins.chrom.tolist()], dtype=bool)
    overlap = np.clip(np.minimum(bins.end, end) - np.maximum(bins.start, start), 0, None)
    return np.where(on_17, overlap / (bins.end - bins.start), 0.0)


def weighted_level(profile: Profile, coefficients: np.ndarray, dispersion: float) -> tuple[float, float]:
    """Weighted mean of the log2 ratios with per-bin ``coefficients`` (x weight), and its SE (bin noise and
    the GC curve's error)."""
    usable = np.isfinite(profile.log2_ratio) & (coefficients > 0)
    if not usable.any():
        return float("nan"), float("nan")
    a = coefficients[usable] * profile.weight[usable]
    mean = float(np.sum(a * profile.log2_ratio[usable]) / a.sum())
    variance = float(np.sum(a ** 2 / profile.weight[usable]) / a.sum() ** 2)
    return mean, float(np.hypot(np.sqrt(variance * dispersion), gc_level_se(profile, coefficients)))


def gc_level_se(profile: Profile, coefficients: np.ndarray) -> float:
    """The SE that the sample's fitted GC curve adds to its weighted level over ``coefficients``: one error
    for bins of one GC, however many there are (``types.GcCurveError``)."""
    usable = np.isfinite(profile.log2_ratio) & (coefficients > 0)
    return normalize.gc_error_se(profile.gc_error, np.where(usable, coefficients * profile.weight, 0.0))


def segment_of(segments: Segments, bin_indices: np.ndarray) -> int | None:
    """The one segment holding all of ``bin_indices``, or None if they straddle a boundary."""
    holders = {int(np.searchsorted(segments.end_bin, i, side="right")) for i in bin_indices.tolist()}
    return holders.pop() if len(holders) == 1 else None


def segment_scatter_se(segments: Segments, index: int, profile: Profile) -> float:
    """SE of a segment's level, never less than its own bins' scatter says.

    The segmentation's interval scales the weights by one overdispersion for the whole profile; bins of
    one kind (capture targets) can scatter more than that, and a segment of them would be measured
    too precisely. The segment's weighted residual variance (n - 1 degrees of freedom) is the check.
    """
    bins = slice(segments.first_bin[index], segments.end_bin[index])
    x, w = profile.log2_ratio[bins], profile.weight[bins]
    usable = np.isfinite(x) & (w > 0)
    x, w = x[usable], w[usable]
    profile_se = (segments.ci_high[index] - segments.ci_low[index]) / (2 * Z95)
    if len(x) < 2:
        return float(profile_se)
    scatter = float(np.sum(w * (x - segments.log2_ratio[index]) ** 2) / (len(x) - 1))
    return float(max(profile_se, np.sqrt(scatter / w.sum())))


def segment_span(segments: Segments, bins: Bins, index: int) -> tuple[str, int, int]:
    return (str(segments.chrom[index]), int(bins.start[segments.first_bin[index]]),
            int(bins.end[segments.end_bin[index] - 1]))


def null_distribution(panel: Panel, coefficients: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Each panel normal's cross-fitted level over the same bins and coefficients."""
    a = coefficients[panel.null_bins] * np.nan_to_num(weight[panel.null_bins])
    values = []
    for profile in panel.null_log2:
        usable = np.isfinite(profile) & (a > 0)
        if usable.any():
            values.append(np.sum(a[usable] * profile[usable]) / a[usable].sum())
    return np.array(values)


# A run of usable bins with no fragment at all where this many were expected, over at least this span, is a gap
# in the data, not biology: normal cells' DNA alone leaves (1 - TF) of the expectation, so a deletion in the
# tumour gives P(0) below exp(-100 (1 - TF)); a homozygous germline deletion, missing from the normal cells too,
# is far shorter than 2 Mb (UGT2B17 ~117 kb, LCE3B/C ~32 kb). A BAM cut at a block boundary (with a valid
# end-of-file block) has such a gap to its end, tens of Mb.
COVERAGE_GAP_FRAGMENTS = 100
COVERAGE_GAP_SPAN = 2_000_000


def largest_coverage_gap(counts: np.ndarray, expected: np.ndarray, usable: np.ndarray, bins: Bins,
                         min_span: int = COVERAGE_GAP_SPAN):
    """(expected fragments, first bin, last bin) of the run of usable bins of one contig without a single
    fragment, spanning at least ``min_span`` bp, that expected the most; None if there is no such run."""
    index = np.flatnonzero(usable & np.isfinite(expected))
    if not len(index):
        return None
    empty = counts[index] == 0
    contig = bins.chrom[index]
    starts = np.r_[True, (empty[1:] != empty[:-1]) | (contig[1:] != contig[:-1])]
    run = np.cumsum(starts) - 1
    totals = np.bincount(run, weights=expected[index])
    first, last = index[starts], index[np.r_[starts[1:], True]]
    totals[~empty[starts] | (bins.end[last] - bins.start[first] < min_span)] = 0.0
    if not totals.max() > 0:
        return None
    largest = int(np.argmax(totals))
    members = index[run == largest]
    return float(totals[largest]), int(members[0]), int(members[-1])


def quality_control(outcomes: dict, profile: Profile, panel: Panel, erbb2_overlap: np.ndarray,
                    thresholds: Thresholds, counts: np.ndarray | None = None, bins: Bins | None = None) -> dict:
    """QC metrics and the reasons, if any, the sample cannot be called (``counts``: the sample's raw counts)."""
    erbb2 = erbb2_overlap > 0
    usable_erbb2 = erbb2 & panel.usable
    expected_erbb2 = float(np.nansum(profile.expected_count[usable_erbb2] * erbb2_overlap[usable_erbb2]))
    masked_fraction = float(np.mean(~panel.usable))
    metrics = {
        "fragments_counted": int(outcomes.get("fragments_counted", 0)),
        "noise_mapd": round(profile.noise, 4),
        "locus_noise_mapd": None if np.isnan(profile.locus_noise) else round(profile.locus_noise, 4),
        "gc_bias": round(profile.gc_bias, 4),
        "masked_bin_fraction": round(masked_fraction, 4),
        "erbb2_usable_bins": int(usable_erbb2.sum()),
        "erbb2_expected_fragments": round(expected_erbb2, 1),
        "panel_components": profile.n_components,
        "panel_depth_ratio": None if panel.normal_fragments is None else
        round(int(outcomes.get("fragments_counted", 0)) / panel.normal_fragments, 2),
    }
    reasons = []
    if metrics["fragments_counted"] < thresholds.min_fragments:
        reasons.append(f"only {metrics['fragments_counted']:,} fragments counted (need {thresholds.min_fragments:,})")
    if not usable_erbb2.any():
        reasons.append("no usable bin over ERBB2 (all masked by the panel of normals)")
    elif expected_erbb2 < thresholds.min_erbb2_fragments:
        reasons.append(f"coverage at ERBB2 too low ({expected_erbb2:.0f} fragments expected, need "
                       f"{thresholds.min_erbb2_fragments:.0f})")
    elif counts is not None and not np.any(counts[usable_erbb2]):
        # Plasma always carries the normal cells' two copies, so even a tumour with none leaves about half the
        # expected fragments: with >= min_erbb2_fragments expected, zero has probability < exp(-30).
        reasons.append(f"no fragment at all over ERBB2 ({expected_erbb2:.0f} expected): a coverage gap "
                       "(failed capture, or reads there filtered out), not a copy number")
    gap = None if counts is None or bins is None else \
        largest_coverage_gap(counts, profile.expected_count, panel.usable, bins)
    if gap is not None and gap[0] >= COVERAGE_GAP_FRAGMENTS:
        expected, first, last = gap
        reasons.append(f"no fragment at all in {bins.chrom[first]}:{bins.start[first] + 1:,}-{bins.end[last]:,} "
                       f"({expected:.0f} expected): a gap in the data (a truncated BAM, or reads there filtered "
                       "out), not a copy number")
    if not profile.noise <= thresholds.max_noise:
        reasons.append(f"profile too noisy (MAPD {profile.noise:.3f} > {thresholds.max_noise})")
    if profile.gc_bias > thresholds.max_gc_bias:
        reasons.append(f"GC bias too strong ({profile.gc_bias:.2f} log2 > {thresholds.max_gc_bias})")
    if masked_fraction > thresholds.max_masked_fraction:
        reasons.append(f"{masked_fraction:.0%} of bins masked by the panel of normals")
    if (metrics["panel_depth_ratio"] or 0) > thresholds.max_panel_depth_ratio:
        reasons.append(f"{metrics['panel_depth_ratio']:.1f} times the fragments of the panel's normals (median "
                       f"{panel.normal_fragments:,.0f}): the errors of their reference, which no interval carries, "
                       "would outweigh the sample's own; call against normals sequenced at least "
                       f"1/{thresholds.max_panel_depth_ratio:g} as deep")
    return {"pass": not reasons, "reasons": reasons, **metrics}


def copy_number_at(plasma: float, fraction: float, baseline_copies: float = 2) -> float:
    """The tumour copy number of a clonal event at plasma copy number ``plasma`` (twice its ratio R to the
    profile's baseline level) and tumour fraction ``fraction``, when the tumour holds ``baseline_copies`` (m)
    at that level: ``[R (2(1 - TF) + TF m) - 2(1 - TF)] / TF`` (reference/SOURCES.md), which for m = 2 is
    ``2 + (PCN - 2) / TF``. Clipped at 0: a plasma copy number below 2 read at a small TF can give a negative
    value; no copy number is."""
    ratio = plasma / 2
    return max(0.0, (ratio * (2 * (1 - fraction) + fraction * baseline_copies) - 2 * (1 - fraction)) / fraction)


def tumor_copy_number(plasma: float, plasma_ci: tuple[float, float], fraction: float,
                      fraction_ci: tuple[float, float], baseline_copies: float = 2):
    """``copy_number_at`` with an interval over both the PCN and the TF intervals: above PCN 2 the copy number
    falls as TF rises, below it it rises."""
    low_tf, high_tf = fraction_ci
    return copy_number_at(plasma, fraction, baseline_copies), (
        copy_number_at(plasma_ci[0], high_tf if plasma_ci[0] > 2 else low_tf, baseline_copies),
        copy_number_at(plasma_ci[1], low_tf if plasma_ci[1] > 2 else high_tf, baseline_copies))


def reading_values(reading: purity.PloidyReading, plasma: float, plasma_ci: tuple[float, float],
                   floor_plasma: float, detectable_plasma: float | None, core_upper_plasma: float | None) -> dict:
    """ERBB2 under one reading of the profile: tumour copy number and interval, its floor (the plasma level
    min_z_score SEs down, read at the top of the TF interval), the limit of detection (the plasma CN a core
    amplification reaches significance at, at the bottom) and the core's 95% upper copy number (at the end of
    the TF interval that makes it largest)."""
    copies, fraction, interval = reading.baseline_copy_number, reading.fraction, reading.fraction_ci95
    estimate, ci = tumor_copy_number(plasma, plasma_ci, fraction, interval, copies)
    return {"baseline_copy_number": copies, "copies_per_step": reading.copies_per_step, "ploidy": reading.ploidy,
            "tumor_fraction": fraction, "tumor_fraction_ci95": interval, "tumor_copy_number": estimate,
            "tumor_copy_number_ci95": ci,
            "tumor_copy_number_floor": tumor_copy_number(plasma, (floor_plasma, plasma_ci[1]), fraction, interval,
                                                         copies)[1][0],
            "limit_of_detection_copy_number": None if detectable_plasma is None else copy_number_at(
                detectable_plasma, interval[0], copies),
            "core_upper_copy_number": None if core_upper_plasma is None else copy_number_at(
                core_upper_plasma, interval[0] if core_upper_plasma > 2 else interval[1], copies)}


def _reading_name(copies: int) -> str:
    return "if the tumour is diploid" if copies == 2 else f"read with {copies} tumour copies at the baseline"


def _reading_text(reading: dict, share: str) -> str:
    """How a reason names an alternative reading."""
    step = "" if reading["copies_per_step"] is None else f", steps of {reading['copies_per_step']}"
    ploidy = "" if reading["ploidy"] is None else f", ploidy {reading['ploidy']:.1f}"
    return (f"{reading['baseline_copy_number']} tumour copies at the baseline{step}{ploidy}, {share} "
            f"{reading['tumor_fraction']:.1%}")


def classify(*, qc: dict, significant: bool, focal: bool | None, plasma_ci: tuple[float, float],
             tumor_cn: float | None, tumor_ci: tuple[float, float] | None, tumor_cn_floor: float | None,
             lod: float | None, core_upper_cn: float | None, tumor_fraction: purity.TumorFractionFit,
             readings: tuple[dict, ...], level_text: str, thresholds: Thresholds) -> tuple[str, str]:
    """The status and a plain-language reason. Every rule of the ERBB2 call is here.

    The copy numbers are those of the reported reading of the profile (diploid unless an external tumour fraction
    agrees only with a polyploid one): ``tumor_cn_floor``: the tumour copy number held with the confidence a
    gain needs (min_z_score; call_erbb2); ``lod``: the tumour copy number of the amplicon core this sample would
    show with probability ``detection_probability``, at the low end of the TF interval (at the TF detection
    limit when TF is below detection); ``core_upper_cn``: the core's 95% upper tumour copy number (None when TF
    is below detection, which leaves it unbounded). ``readings``: the same under the other readings that fit the
    profile as well (``reading_values``); a status must hold under each of them.
    """
    high = thresholds.high_level_copy_number
    tf_text = tumor_fraction.describe()
    share = "tumour fraction" if tumor_fraction.fragments == "all" else "tumour share of size-weighted fragments"
    reported_copies = tumor_fraction.readings[0].baseline_copy_number if tumor_fraction.readings else 2
    reported = _reading_name(reported_copies)
    hint = ("the tumour fraction given agrees with both" if tumor_fraction.method == "external" else
            "a tumour fraction from variant allele fractions (--tumor-fraction) can tell them apart")

    def other_reading(value, side=max):
        """The alternative reading whose ``value`` is largest (``side`` max) or smallest (min)."""
        candidates = [r for r in readings if value(r) is not None]
        return side(candidates, key=value) if candidates else None

    if not qc["pass"]:
        return "indeterminate", "QC failed: " + "; ".join(qc["reasons"]) + "."
    if tumor_fraction.conflict:
        return "indeterminate", (f"ERBB2 {level_text}, but {tumor_fraction.conflict}: one of the two is wrong, so the "
                                 "tumour copy number is not established; check the external estimate.")
    if not significant:
        if not tumor_fraction.detected:
            at_limit = "" if lod is None else f" (even at {tumor_fraction.limit:.1%} only {lod:.1f} or more copies would show)"
            return "indeterminate", (f"No ERBB2 gain detected ({level_text}), but with {tf_text} there may be too "
                                     "little tumour DNA for any amplification to show, so a high-level amplification "
                                     f"(>= {high:g}) cannot be excluded{at_limit}.")
        if lod is not None and lod <= high:
            other = other_reading(lambda r: r["limit_of_detection_copy_number"])
            if other is not None and other["limit_of_detection_copy_number"] > high:
                return "indeterminate", (
                    f"No ERBB2 gain ({level_text}). With {tf_text}, {lod:.1f} or more tumour copies would have been "
                    f"detected {reported}, but under another ploidy reading that fits the profile as well "
                    f"({_reading_text(other, share)}) only {other['limit_of_detection_copy_number']:.1f} or more, so a "
                    f"high-level amplification (>= {high:g}) cannot be excluded; {hint}.")
            return "not_detected", (f"No ERBB2 gain ({level_text}). With {tf_text}, a tumour ERBB2 copy number of "
                                    f"{lod:.1f} or more would have been detected "
                                    f"({thresholds.detection_probability:.0%} of the time)"
                                    + (", under every ploidy reading" if readings else "") + ".")
        shown = "any" if lod is None else f"{lod:.1f} or more"
        return "indeterminate", (f"No ERBB2 gain detected ({level_text}), but with {tf_text} only {shown} tumour "
                                 f"copies would have been visible, so a high-level amplification (>= {high:g}) "
                                 "cannot be excluded.")
    if not focal:
        if core_upper_cn is not None and core_upper_cn < high:
            other = other_reading(lambda r: r["core_upper_copy_number"])
            if other is not None and other["core_upper_copy_number"] >= high:
                return "indeterminate", (
                    f"ERBB2 is gained ({level_text}) only as part of a broad chr17/17q gain; the amplicon core holds "
                    f"fewer than {high:g} tumour copies {reported}, but under another ploidy reading that fits the "
                    f"profile as well ({_reading_text(other, share)}) up to {other['core_upper_copy_number']:.1f}, so "
                    f"a focal high-level amplification on top of the arm gain cannot be excluded; {hint}.")
            return "low_level_gain", (f"ERBB2 is gained ({level_text}) only as part of a broad chr17/17q gain, not a "
                                      "focal amplification (the amplicon core holds fewer than "
                                      f"{high:g} tumour copies at {tf_text}); arm-level gains do not predict "
                                      "anti-HER2 benefit.")
        bound = "unbounded" if core_upper_cn is None else f"up to {core_upper_cn:.1f} tumour copies"
        return "indeterminate", (f"ERBB2 is gained ({level_text}) with a broad chr17/17q gain and no focal step was "
                                 f"resolved, but with {tf_text} the amplicon core could hold {bound}, so a focal "
                                 f"high-level amplification (>= {high:g}) on top of the arm gain cannot be excluded.")
    if tumor_cn is None:
        if plasma_ci[0] >= high:
            return "high_level_amplification", (f"Focal ERBB2 amplification ({level_text}); plasma copy number "
                                                f"alone is >= {high:g}, so the tumour's is too, whatever the tumour "
                                                "fraction.")
        return "indeterminate", (f"Focal ERBB2 gain ({level_text}) but {tf_text}, so the tumour copy number cannot "
                                 "be established; give --tumor-fraction (e.g. from variant allele fractions).")
    interval = f"tumour copy number {tumor_cn:.1f} (95% CI {tumor_ci[0]:.1f}-{tumor_ci[1]:.1f}) at {tf_text}"
    # the reported reading is named once: in the interval when an external fraction chose a polyploid one
    named = f" {reported}" if reported_copies == 2 else ""
    if not named:
        interval += f", {reported}"
    floor = f"at least {tumor_cn_floor:.1f} copies with the confidence a gain needs (z {thresholds.min_z_score:g})"
    enough = thresholds.min_amplification_copy_number

    def high_level(cn, cn_floor):
        return cn >= high and cn_floor >= enough

    if high_level(tumor_cn, tumor_cn_floor):
        other = other_reading(lambda r: r["tumor_copy_number_floor"], min)
        if other is None or high_level(other["tumor_copy_number"], other["tumor_copy_number_floor"]):
            return "high_level_amplification", f"Focal ERBB2 amplification ({level_text}); {interval}; {floor}."
        return "indeterminate", (
            f"Focal ERBB2 amplification ({level_text}): {interval}{named}, {floor}, but under another ploidy "
            f"reading that fits the profile as well ({_reading_text(other, share)}) "
            f"{other['tumor_copy_number']:.1f}, at least {other['tumor_copy_number_floor']:.1f}, too few to call "
            f"high-level; {hint}.")
    if tumor_ci[1] < high:
        other = other_reading(lambda r: r["tumor_copy_number_ci95"][1])
        if other is not None and other["tumor_copy_number_ci95"][1] >= high:
            low, upper = other["tumor_copy_number_ci95"]
            return "indeterminate", (
                f"Focal ERBB2 gain ({level_text}): {interval}{named}, but under another ploidy reading that fits "
                f"the profile as well ({_reading_text(other, share)}) ERBB2 holds {other['tumor_copy_number']:.1f} "
                f"(95% CI {low:.1f}-{upper:.1f}), so a high-level amplification (>= {high:g}) cannot be excluded; "
                f"{hint}.")
        return "low_level_gain", f"Focal ERBB2 gain ({level_text}) below the high-level threshold {high:g}: {interval}."
    return "indeterminate", (f"Focal ERBB2 gain ({level_text}); {interval}, {floor}: too uncertain to call "
                             f"high-level (needs an estimate >= {high:g} and at least "
                             f"{enough:g} copies with that confidence) or low-level (interval below {high:g}).")


def arm_level(profile: Profile, bins: Bins, assembly: Assembly, arm: str, exclude: np.ndarray, dispersion: float):
    boundary = assembly.arm_boundaries["chr17"]
    on_17 = np.array([canonical_contig(c) == "17" for c in bins.chrom.tolist()], dtype=bool)
    side = bins.end <= boundary if arm == "17p" else bins.start >= boundary
    selection = on_17 & side & ~exclude & (bins.kind != "locus")
    return weighted_level(profile, selection.astype(float), dispersion)


def call_erbb2(sample: str, profile: Profile, segments: Segments, bins: Bins, panel: Panel, assembly: Assembly,
               outcomes: dict, tumor_fraction: purity.TumorFractionFit, thresholds: Thresholds,
               counts: np.ndarray | None = None) -> Erbb2Call:
    """The ERBB2 call for one normalised, segmented sample (``counts``: its raw counts, for QC)."""
    overlap = span_overlap(bins, *assembly.gene_span("ERBB2"))
    erbb2_bins = np.flatnonzero((overlap > 0) & np.isfinite(profile.log2_ratio))
    qc = quality_control(outcomes, profile, panel, overlap, thresholds, counts, bins)
    baseline = tumor_fraction.baseline_log2
    # the smallest real amplicon is the core: it measures ERBB2 where segmentation finds no step
    core = span_overlap(bins, *assembly.core_span)
    core_bins = np.flatnonzero((core > 0) & np.isfinite(profile.log2_ratio))
    kind = bins.kind[core_bins[0]] if len(core_bins) else "locus"
    locus_dispersion = neighbour_overdispersion(profile.log2_ratio, profile.weight, bins.chrom, bins.kind == kind)
    core_level, core_se = weighted_level(profile, core, locus_dispersion)
    core_relative = core_level - baseline  # the core's level against the diploid state
    # which measurement: the segment holding ERBB2, unless the core departs from it (a missed small event)
    holder = segment_of(segments, erbb2_bins) if len(erbb2_bins) else None
    coefficients, level, se, measured_on = core, core_level, core_se, "core"
    chosen = holder is not None and segments.n_bins[holder] > 0  # the core is then chosen over its segment
    if chosen:
        segment_level = float(segments.log2_ratio[holder])
        in_segment = np.zeros(len(bins))
        in_segment[segments.first_bin[holder]:segments.end_bin[holder]] = 1.0
        # a segment's level also carries the model error of the diploid baseline (the TF fit's floor) and
        # the error of the GC curve at its bins' GC
        segment_se = float(np.sqrt(segment_scatter_se(segments, holder, profile) ** 2
                                   + tumor_fraction.model_error ** 2 + gc_level_se(profile, in_segment) ** 2))
        departure = abs(core_level - segment_level) / np.hypot(core_se, segment_se)
        if departure < thresholds.min_focal_z_score:
            coefficients, level, se, measured_on = in_segment, segment_level, segment_se, "segment"
            chosen = False
    if measured_on == "core":
        # The core stands in for ERBB2 only if ERBB2's own bins agree with the rest of it: an amplicon can end
        # inside the core (next to ERBB2, without it), and a partly amplified core would be read as ERBB2's level.
        gene = np.where(overlap >= 0.5, overlap, 0.0)  # bins mostly inside ERBB2
        gene_level, gene_se = weighted_level(profile, gene, locus_dispersion)
        partners_level, partners_se = weighted_level(profile, np.where(overlap == 0, core, 0.0), locus_dispersion)
        if abs(partners_level - gene_level) / np.hypot(gene_se, partners_se) >= thresholds.min_focal_z_score:
            coefficients, level, se, measured_on, chosen = gene, gene_level, gene_se, "gene", True
    level -= baseline
    z_score = level / se if se > 0 else float("nan")
    null = null_distribution(panel, coefficients, profile.weight)
    null_z = None
    if len(null) >= MIN_NULL_NORMALS and np.std(null, ddof=1) > 0:
        null_z = float((level - np.mean(null)) / np.std(null, ddof=1))
    effective_z = min(z_score, null_z) if null_z is not None else z_score
    # the span measured: the amplicon's extent if focal
    amplicon, exclude = None, core > 0
    if measured_on == "segment":
        chrom, start, end = segment_span(segments, bins, holder)
        if end - start <= thresholds.max_focal_span:  # a candidate amplicon is left out of its arm's level; an
            exclude = np.zeros(len(bins), dtype=bool)  # arm-scale segment is the arm (its 17q level is reported)
            exclude[segments.first_bin[holder]:segments.end_bin[holder]] = True
    elif np.any(used := (coefficients > 0) & np.isfinite(profile.log2_ratio)):
        first, last = np.flatnonzero(used)[[0, -1]]
        chrom, start, end = str(bins.chrom[first]), int(bins.start[first]), int(bins.end[last])
    else:
        chrom, (start, end) = assembly.locus[0], assembly.core_span
    plasma = 2 * 2 ** level
    z_interval = Z_CHOSEN if chosen else Z95
    plasma_interval = (level - z_interval * se, level + z_interval * se)
    spans_core = measured_on == "segment" and end - start > thresholds.max_focal_span and np.isfinite(core_se)
    if spans_core:
        # An arm-scale segment vouches for ERBB2 only if no amplicon too small or too weak to segment lies
        # inside it. The core's own bins measure ERBB2 either way, so the interval is the union of both 95%
        # intervals: it covers the truth at least 95% of the time whichever is so.
        plasma_interval = (min(plasma_interval[0], core_relative - Z95 * core_se),
                           max(plasma_interval[1], core_relative + Z95 * core_se))
    plasma_ci = (2 * 2 ** plasma_interval[0], 2 * 2 ** plasma_interval[1])
    # focality: ERBB2 against the rest of 17q
    genome_dispersion = neighbour_overdispersion(profile.log2_ratio, profile.weight, bins.chrom, bins.kind != "locus")
    q_level, q_se = arm_level(profile, bins, assembly, "17q", exclude, genome_dispersion)
    p_level, _ = arm_level(profile, bins, assembly, "17p", exclude, genome_dispersion)
    q_se = np.hypot(q_se, tumor_fraction.model_error)
    above_arm = (level - (q_level - baseline)) / np.hypot(se, q_se)
    significant = bool(effective_z >= thresholds.min_z_score and plasma > 2)
    focal = None
    if significant:
        focal = bool(above_arm >= thresholds.min_focal_z_score and end - start <= thresholds.max_focal_span)
        if focal:
            inside = [name for name, s, e in zip(assembly.gene_names, assembly.gene_starts, assembly.gene_ends)
                      if s < end and e > start]
            amplicon = {"chrom": chrom, "start": start, "end": end, "genes": inside,
                        "boundaries": BOUNDARIES[measured_on]}
    # The tumour copy number held with the confidence a gain needs: the level min_z_score SEs below its estimate
    # (and the core's, where the interval takes it in), read at the top of the TF interval. A high-level call needs
    # it >= 6, as sure of the amplification as of the gain: at a low TF a small plasma excess means many tumour
    # copies, and the 95% bound let a CN-4 tumour at TF 2.5% with a 3-SE excursion of its amplicon core through
    # (benchmarks/results/fragment_size_variation.md).
    floor_level = level - thresholds.min_z_score * se
    if spans_core:
        floor_level = min(floor_level, core_relative - thresholds.min_z_score * core_se)
    # the limit of detection is for the smallest real amplicon, the core, measured on its own bins: the level
    # found significant with probability detection_probability, read at the low end of the tumour-fraction
    # interval; and the most the core could hold: its 95% upper level, read there too
    core_known = bool(np.isfinite(core_se))
    power_z = NormalDist().inv_cdf(thresholds.detection_probability)
    detectable_plasma = 2 * 2 ** ((thresholds.min_z_score + power_z) * core_se)
    core_upper_plasma = 2 * 2 ** (core_relative + Z95 * core_se) if core_known else None
    readings = [reading_values(reading, plasma, plasma_ci, 2 * 2 ** floor_level,
                               detectable_plasma if core_known else None, core_upper_plasma)
                for reading in tumor_fraction.readings]
    if readings:  # the reported reading first (diploid unless an external tumour fraction chose another)
        reported = readings[0]
        tumor_cn, tumor_ci = reported["tumor_copy_number"], reported["tumor_copy_number_ci95"]
        tumor_cn_floor, lod = reported["tumor_copy_number_floor"], reported["limit_of_detection_copy_number"]
        core_upper_cn = reported["core_upper_copy_number"]
    else:  # TF below detection: the limit of detection at the TF detection limit, a best case
        tumor_cn = tumor_ci = tumor_cn_floor = core_upper_cn = None
        lod = copy_number_at(detectable_plasma, tumor_fraction.limit) if core_known and tumor_fraction.limit else None
    interval_text = f"95% CI {plasma_ci[0]:.2f}-{plasma_ci[1]:.2f}"
    if spans_core:
        interval_text += " with the amplicon core's bins"
    level_text = f"plasma copy number {plasma:.2f}, {interval_text}, z {effective_z:.1f}"
    status, reason = classify(qc=qc, significant=significant, focal=focal, plasma_ci=plasma_ci, tumor_cn=tumor_cn,
                              tumor_ci=tumor_ci, tumor_cn_floor=tumor_cn_floor, lod=lod, core_upper_cn=core_upper_cn,
                              tumor_fraction=tumor_fraction, readings=tuple(readings[1:]), level_text=level_text,
                              thresholds=thresholds)
    return Erbb2Call(
        sample=sample, status=status, reason=reason, log2_ratio=level, log2_ratio_se=se, measured_on=measured_on,
        core_log2_ratio=core_relative, z_score=z_score, null_z_score=null_z,
        gain_detected=significant, detectable_plasma_copy_number=detectable_plasma,
        plasma_copy_number=plasma, plasma_copy_number_ci95=plasma_ci,
        tumor_copy_number=tumor_cn, tumor_copy_number_ci95=tumor_ci, tumor_copy_number_floor=tumor_cn_floor,
        focal=focal, amplicon=amplicon,
        arm_log2_ratios={"17p": p_level - baseline, "17q": q_level - baseline},
        limit_of_detection_copy_number=lod, qc=qc, ploidy_readings=tuple(readings[1:]),
    )


@dataclass(frozen=True)
class Analysis:
    """What 'call' reports for one sample."""
    call: Erbb2Call
    fit: purity.TumorFractionFit  # all fragments
    profile: Profile  # all fragments
    segments: Segments  # all fragments
    size_weighted_fit: purity.TumorFractionFit | None  # the second look, made when TF is below detection


def _look(counts: np.ndarray, bins: Bins, panel: Panel, assembly: Assembly, thresholds: Thresholds,
          external_tumor_fraction: float | None):
    """Normalise one channel's counts, segment them and fit the tumour fraction: (profile, segments, fit)."""
    profile = normalize.log2_ratios(counts, panel, bins)
    segments = segment_profile(profile.log2_ratio, profile.weight, bins.chrom, arm=arm_index(bins, assembly))
    error = purity.model_error(panel, thresholds)
    if external_tumor_fraction is None:
        fit = purity.fit_tumor_fraction(segments, bins, panel.usable, profile.noise, assembly, thresholds, error)
    else:
        fit = purity.external_tumor_fraction(external_tumor_fraction, segments, bins, panel.usable, profile.noise,
                                             assembly, thresholds, error)
    return profile, segments, fit


def size_weighted_call(plasma: Erbb2Call, weighted: Erbb2Call, fit: purity.TumorFractionFit) -> Erbb2Call:
    """The all-fragment call ``plasma`` (whose TF ``fit`` is below detection) with the status, tumour copy number,
    focality and limit of detection of the size-weighted look, which detected the tumour DNA."""
    reason = (f"Tumour fraction below detection with all fragments (< {fit.limit:.1%}), but tumour DNA shows when each "
              f"90-150 bp fragment counts {normalize.SHORT_FRAGMENT_WEIGHT} times (tumour DNA is shorter). On these "
              f"size-weighted fragments: {weighted.reason}")
    measurement = {"plasma_copy_number": weighted.plasma_copy_number,
                   "plasma_copy_number_ci95": weighted.plasma_copy_number_ci95,
                   "log2_ratio": weighted.log2_ratio, "log2_ratio_se": weighted.log2_ratio_se,
                   "z_score": weighted.z_score, "null_z_score": weighted.null_z_score,
                   "gain_detected": weighted.gain_detected, "measured_on": weighted.measured_on}
    return replace(plasma, status=weighted.status, reason=reason, tumor_copy_number=weighted.tumor_copy_number,
                   tumor_copy_number_ci95=weighted.tumor_copy_number_ci95,
                   tumor_copy_number_floor=weighted.tumor_copy_number_floor, focal=weighted.focal,
                   amplicon=weighted.amplicon, limit_of_detection_copy_number=weighted.limit_of_detection_copy_number,
                   called_on="size_weighted", size_weighted=measurement, ploidy_readings=weighted.ploidy_readings)


def analyse(counts: FragmentCounts, panels: dict[str, Panel], assembly: Assembly, thresholds: Thresholds,
            external_tumor_fraction: float | None = None) -> Analysis:
    """Normalise, segment, fit the tumour fraction and call ERBB2 on all fragments.

    When the tumour fraction is below detection there, look again at the size-weighted channel
    (``normalize.CHANNELS``): its tumour share is larger, and a tumour fraction and an ERBB2 level measured
    on the same fragments give the tumour copy number as all fragments would. If that look detects tumour
    DNA, its estimate is one a tumour fraction below the all-fragment limit could give
    (``normalize.largest_size_weighted_share``), and it passes QC, it makes the call (``size_weighted_call``).
    """
    bins = counts.bins
    profile, segments, fit = _look(counts.count, bins, panels["all"], assembly, thresholds, external_tumor_fraction)
    result = call_erbb2(counts.sample, profile, segments, bins, panels["all"], assembly, counts.outcomes, fit,
                        thresholds, counts.count)
    weighted_fit = None
    if not fit.detected and result.qc["pass"]:
        weighted = normalize.channel_counts(counts, "size_weighted")
        weighted_profile, weighted_segments, weighted_fit = _look(weighted, bins, panels["size_weighted"], assembly,
                                                                  thresholds, None)
        # Below the all-fragment detection limit, even a tumour whose fragments were all short holds at most
        # this share of the weighted counts: a larger estimate is noise, however good its fit looks.
        ceiling = normalize.largest_size_weighted_share(counts, fit.limit)
        weighted_fit = replace(weighted_fit, fragments="size_weighted", ceiling=ceiling)
        if weighted_fit.above_ceiling:
            result = replace(result, reason=(
                f"{result.reason} (With each 90-150 bp fragment counted {normalize.SHORT_FRAGMENT_WEIGHT} times the "
                f"fit found a tumour share of {weighted_fit.estimate:.1%}, more than the {ceiling:.1%} that a tumour "
                "fraction below detection allows, so it is not used.)"))
        elif weighted_fit.detected:
            weighted_call = call_erbb2(counts.sample, weighted_profile, weighted_segments, bins,
                                       panels["size_weighted"], assembly, counts.outcomes, weighted_fit, thresholds,
                                       weighted)
            if weighted_call.qc["pass"]:
                result = size_weighted_call(result, weighted_call, fit)
    return Analysis(result, fit, profile, segments, weighted_fit)
