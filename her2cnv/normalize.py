"""Supporting functions for the 'normalize' command: counts -> denoised log2 copy ratios.

The steps, for normals (building the panel) and samples alike:

1. Depth per callable base: ``count / (bin length x (1 - N fraction))``, so 10 kb
   locus bins and 100 kb genome bins share one scale. Bins are normalised within
   coverage groups (WGS genome+locus bins; capture targets; off-target bins), whose
   depths differ by the capture enrichment.
2. GC correction: a LOESS fit (local linear, tricube weights) of relative depth
   against GC, on the per-0.5%-GC medians of the autosomal bins, then division by
   the fit and by the group median, as ichorCNA/QDNAseq do. The fit's own error
   is kept (``types.GcCurveError``): bins of one GC share it, so a level's SE
   must carry it however many bins it averages (``call.py``).
3. Against the panel: ``log2(depth) - reference_log2`` (``pon.reference_log2``), then
   the projection onto the panel's residual components is removed (as GATK's
   DenoiseReadCounts does).
4. Centring on the median of autosomal bins; weights are inverse variances:
   Poisson ``1 / (ln2^2 x expected count)`` plus the panel's systematic variance. The
   expected count takes the bin's efficiency from the panel shrunk by its sampling noise
   (``pon.efficiency_log2``): from the raw reference, weights would favour the bins whose
   ratio it makes low.

Bins over the 17q12 amplicon (``on_amplicon``) never inform any fit in these
steps (GC curve, group median, projection, centring), so an amplification cannot
shrink its own signal. Pure functions over numpy arrays; no file access.
"""
from __future__ import annotations

import numpy as np

from .bins import canonical_contig
from .types import BinMask, Bins, FragmentCounts, GcCurveError, Panel, Profile

GC_STEP = 0.005  # GC bins of 0.5% for the LOESS medians
LOESS_SPAN = 0.3  # fraction of the bins each local fit uses
GC_RANGE = (0.25, 0.75)  # outside: masked as extreme GC
MAX_N_FRACTION = 0.5
PSEUDO_COUNT = 0.5
LN2_SQUARED = np.log(2.0) ** 2
COVERAGE_GROUPS = {"genome": 0, "locus": 0, "target": 1, "offtarget": 2}
# Count channels, each with its own panel: all fragments; the short (90-150 bp, tumour-enriched) ones; and
# all fragments with each short one counted SHORT_FRAGMENT_WEIGHT times. Weighting fragments by how much
# likelier a tumour origin is at their size is the matched filter for a small tumour share: with the
# short window holding ~15% of normal and 2-3 times that share of tumour fragments (Mouliere 2018), the
# best weight is 3-5; 3 is the cautious end. A weighted count is still a mixture of normal and tumour
# fragments, only with a larger tumour share, so tumour fraction and ERBB2 measured in the same channel
# give the tumour copy number exactly as in all fragments (call.py).
CHANNELS = ("all", "short", "size_weighted")
SHORT_FRAGMENT_WEIGHT = 3


def largest_size_weighted_share(counts: FragmentCounts, tumor_fraction: float) -> float:
    """The largest tumour share the size-weighted channel can hold at ``tumor_fraction``: when every tumour
    fragment is short and normal ones are short as often as this sample's fragments are (its tumour DNA is
    too scarce to move that share). A larger estimate cannot come from tumour DNA below that fraction."""
    short_share = float(counts.short_count.sum() / max(counts.count.sum(), 1))
    weight = SHORT_FRAGMENT_WEIGHT
    return weight * tumor_fraction / ((1 + (weight - 1) * short_share) * (1 - tumor_fraction) + weight * tumor_fraction)


def channel_counts(counts: FragmentCounts, channel: str) -> np.ndarray:
    """One channel's per-bin counts."""
    if channel == "all":
        return counts.count
    if channel == "short":
        return counts.short_count
    return counts.count + (SHORT_FRAGMENT_WEIGHT - 1) * counts.short_count


def coverage_groups(bins: Bins) -> np.ndarray:
    """0 for WGS-like bins (genome and locus), 1 for capture targets, 2 for off-target bins."""
    return np.array([COVERAGE_GROUPS[k] for k in bins.kind.tolist()], dtype=np.int8)


def autosomal(bins: Bins) -> np.ndarray:
    return np.array([canonical_contig(c) not in ("X", "Y", "M") for c in bins.chrom.tolist()], dtype=bool)


# the bits that follow from the reference alone (``static_mask``)
REFERENCE_MASK = BinMask.EXTREME_GC | BinMask.MOSTLY_N | BinMask.SEX_CHROMOSOME | BinMask.NO_GC


def static_mask(bins: Bins) -> np.ndarray:
    """Mask bits that follow from the reference alone (GC, N content, sex chromosomes)."""
    mask = np.zeros(len(bins), dtype=np.uint8)
    mask[~np.isfinite(bins.gc)] |= BinMask.NO_GC
    with np.errstate(invalid="ignore"):
        mask[(bins.gc < GC_RANGE[0]) | (bins.gc > GC_RANGE[1])] |= BinMask.EXTREME_GC
    mask[bins.n_fraction > MAX_N_FRACTION] |= BinMask.MOSTLY_N
    mask[~autosomal(bins)] |= BinMask.SEX_CHROMOSOME
    return mask


def callable_length(bins: Bins) -> np.ndarray:
    return (bins.end - bins.start) * np.clip(1.0 - bins.n_fraction, 1e-3, 1.0)


def loess_smoother(x: np.ndarray, weight: np.ndarray, query: np.ndarray, span: float = LOESS_SPAN) -> np.ndarray:
    """The local linear regression (tricube kernels whose width covers ``span`` of the weight) as a matrix:
    row i holds the coefficients giving the fit at ``query[i]`` from the y values at ``x``. A linear
    smoother, so the fit's own error follows from the y values' variances."""
    smoother = np.empty((len(query), len(x)))
    needed = span * weight.sum()
    for i, q in enumerate(query):
        distance = np.abs(x - q)
        by_distance = np.argsort(distance, kind="stable")
        reach = np.searchsorted(np.cumsum(weight[by_distance]), needed)
        bandwidth = max(distance[by_distance[min(reach, len(x) - 1)]], 1e-9) * 1.0001
        kernel = weight * np.clip(1 - (distance / bandwidth) ** 3, 0, None) ** 3
        kernel = kernel / kernel.sum()
        mean_x = (kernel * x).sum()
        spread = (kernel * (x - mean_x) ** 2).sum()
        slope_part = kernel * (x - mean_x) * (q - mean_x) / spread if spread > 0 else 0.0
        smoother[i] = kernel + slope_part  # fit at q = weighted mean of y + slope x (q - mean_x)
    return smoother


def gc_curve(relative_depth: np.ndarray, gc: np.ndarray, fit_bins: np.ndarray):
    """The GC-bias curve: LOESS of per-GC-slot median depth. Returns (grid, fitted depth at grid, loadings).

    ``loadings`` (grid x slots, see ``types.GcCurveError``) carry the curve's own error, centred as the
    corrected depths are: each slot's median has variance ``pi/2 x sigma^2 / n`` (the median's large-sample
    variance; ``sigma^2 / n`` for one or two bins), sigma robustly from the bins' scatter about the curve.
    With a few hundred capture targets this error is a few hundredths of a log2 unit, as large as a focal
    amplicon's own noise; with thousands of WGS bins it is negligible.
    """
    slot = np.floor(gc[fit_bins] / GC_STEP).astype(np.int64)
    values = relative_depth[fit_bins]
    slots, slot_of_bin, sizes = np.unique(slot, return_inverse=True, return_counts=True)
    grid = (slots + 0.5) * GC_STEP
    medians = np.array([np.median(values[slot_of_bin == j]) for j in range(len(slots))])
    smoother = loess_smoother(grid, sizes.astype(float), grid)
    fitted = np.clip(smoother @ medians, 1e-3, None)
    residual = values / fitted[slot_of_bin] - 1.0
    sigma = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    median_variance = np.where(sizes >= 3, np.pi / 2, 1.0) * sigma ** 2 / sizes
    # the corrected depths are divided by their median over the fit bins, which removes the curve's error
    # averaged over the bins' GC distribution: what is left is each node's error against that average
    centred = smoother - (sizes / sizes.sum()) @ smoother
    loadings = centred * np.sqrt(median_variance) / (fitted[:, None] * np.log(2.0))
    return grid, fitted, loadings


def gc_corrected_log2(counts: np.ndarray, bins: Bins, mask: np.ndarray):
    """log2 of GC-corrected depth relative to its group median, the fitted depth (counts expected at ratio 1),
    the GC-bias amplitude (log2 range of the fit over the central 90% of GC values) and the fits' own error
    (``types.GcCurveError``)."""
    length = callable_length(bins)
    density = (counts + PSEUDO_COUNT) / length
    groups = coverage_groups(bins)
    log2_depth = np.full(len(bins), np.nan)
    expected = np.full(len(bins), np.nan)
    curve_group, node, fraction = np.full(len(bins), -1), np.zeros(len(bins), dtype=np.int64), np.zeros(len(bins))
    loadings = []
    gc_bias, largest_group = 0.0, 0
    fittable = ((mask & REFERENCE_MASK) == 0) & ~on_amplicon(bins)
    gc = np.nan_to_num(bins.gc, nan=0.5)
    for group in np.unique(groups):
        members = groups == group
        fit_bins = members & fittable & (counts > 0)
        if fit_bins.sum() < 20:
            fit_bins = members & fittable
        if fit_bins.sum() < 3:
            continue
        scale = np.median(density[fit_bins])
        relative = density / scale
        grid, curve, group_loadings = gc_curve(relative, bins.gc, fit_bins)
        fitted = np.interp(gc, grid, curve)
        corrected = relative / fitted
        centre = np.median(corrected[fit_bins])
        log2_depth[members] = np.log2(corrected[members] / centre)
        expected[members] = (scale * fitted * centre * length)[members]
        curve_group[members] = len(loadings)
        node[members], fraction[members] = grid_position(grid, gc[members])
        loadings.append(group_loadings)
        if fit_bins.sum() > largest_group:  # report the bias of the group with the most bins
            largest_group = int(fit_bins.sum())
            low, high = np.quantile(bins.gc[fit_bins], [0.05, 0.95])
            central = (grid >= low) & (grid <= high)
            gc_bias = float(np.log2(curve[central].max() / curve[central].min())) if central.any() else 0.0
    return log2_depth, expected, gc_bias, GcCurveError(curve_group, node, fraction, tuple(loadings))


def grid_position(grid: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each x's node (at or below it) and fraction of the way to the next node, as ``np.interp`` reads it."""
    if len(grid) == 1:
        return np.zeros(len(x), dtype=np.int64), np.zeros(len(x))
    node = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, len(grid) - 2)
    fraction = np.clip((x - grid[node]) / (grid[node + 1] - grid[node]), 0.0, 1.0)
    return node, fraction


def gc_error_se(error: GcCurveError, weight: np.ndarray) -> float:
    """SE of the weighted mean of log2 ratios (``weight`` per bin, 0 to leave a bin out) that the fitted GC
    curves' own error adds: the weights are carried onto the grid nodes, then through the loadings."""
    total = weight.sum()
    variance = 0.0
    for group, loadings in enumerate(error.loadings):
        chosen = (error.group == group) & (weight > 0)
        if not chosen.any():
            continue
        share = weight[chosen] / total
        node, fraction = error.node[chosen], error.fraction[chosen]
        on_nodes = np.bincount(node, share * (1 - fraction), minlength=loadings.shape[0])
        if loadings.shape[0] > 1:
            on_nodes += np.bincount(node + 1, share * fraction, minlength=loadings.shape[0])
        variance += float(np.sum((on_nodes @ loadings) ** 2))
    return float(np.sqrt(variance))


def project_out(residual: np.ndarray, basis: np.ndarray, fit_bins: np.ndarray) -> np.ndarray:
    """Remove the basis components from ``residual``; coefficients by least squares on ``fit_bins``."""
    if basis.shape[0] == 0:
        return residual.copy()
    coefficients, *_ = np.linalg.lstsq(basis[:, fit_bins].T, residual[fit_bins], rcond=None)
    return residual - coefficients @ basis


def mapd(log2_ratio: np.ndarray, chrom: np.ndarray, selected: np.ndarray) -> float:
    """Median absolute difference of neighbouring selected, unmasked bins on the same contig."""
    index = np.flatnonzero(selected & np.isfinite(log2_ratio))
    if len(index) < 2:
        return float("nan")
    same = chrom[index[1:]] == chrom[index[:-1]]
    differences = np.abs(np.diff(log2_ratio[index]))[same]
    return float(np.median(differences)) if len(differences) else float("nan")


def on_amplicon(bins: Bins) -> np.ndarray:
    """Bins over the 17q12 amplicon: the fine locus bins and any bin (or capture target) on an amplicon gene.

    They never inform a fit (GC curve, group median, projection coefficients, centring): an amplification
    there would pull the fit towards itself and shrink its own signal.
    """
    return (bins.kind == "locus") | (bins.gene != "")


def denoise_fit_bins(bins: Bins, usable: np.ndarray) -> np.ndarray:
    """Bins whose residuals fit the projection coefficients: usable bins off the amplicon."""
    return usable & ~on_amplicon(bins)


def denoise(residual: np.ndarray, basis: np.ndarray, bins: Bins, usable: np.ndarray) -> np.ndarray:
    """Project ``basis`` out of a residual against the panel reference and centre it on the median of the
    fitting bins (off-target bins excluded: capture panels are centred on their targets)."""
    fit_bins = denoise_fit_bins(bins, usable)
    denoised = project_out(residual, basis, fit_bins)
    centring = fit_bins & (bins.kind != "offtarget")
    return denoised - np.median(denoised[centring]) if centring.any() else denoised


def inverse_variance(expected_count: np.ndarray, systematic_variance: np.ndarray) -> np.ndarray:
    """Bin weights: 1 / (Poisson variance of a log2 count, ``1 / (ln2^2 x expected)``, + systematic variance)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 / (1.0 / (LN2_SQUARED * np.maximum(expected_count, 0.5)) + systematic_variance)


def log2_ratios(counts: np.ndarray, panel: Panel, bins: Bins) -> Profile:
    """Normalise one sample's counts against ``panel``; masked bins come out as NaN."""
    usable = panel.usable
    log2_depth, expected, gc_bias, gc_error = gc_corrected_log2(counts, bins, panel.mask)
    residual = np.where(usable, log2_depth - panel.reference_log2, 0.0)
    log2_ratio = np.where(usable, denoise(residual, panel.basis, bins, usable), np.nan)
    expected_count = expected * np.exp2(panel.efficiency_log2)
    weight = np.where(usable, inverse_variance(expected_count, panel.systematic_variance), np.nan)
    genome = bins.kind != "locus"
    return Profile(log2_ratio=log2_ratio, weight=weight, expected_count=expected_count,
                   noise=mapd(log2_ratio, bins.chrom, genome), locus_noise=mapd(log2_ratio, bins.chrom, ~genome),
                   gc_bias=gc_bias, n_components=panel.basis.shape[0], gc_error=gc_error)
