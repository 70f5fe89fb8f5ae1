"""Supporting functions for the 'pon' command: a panel of normals from healthy-donor counts.

Per normal: GC-corrected log2 depth (``normalize.gc_corrected_log2``). Across normals:

- ``reference_log2``: the depth a diploid genome gives in each bin: the mean of the
  normals' counts over their fitted depths, each clipped near their median (``reference_log2``);
- ``efficiency_log2``: that reference shrunk towards its bin kind's median by its own
  error, which the bins' weights use (``efficiency_log2``);
- masks: static ones (GC, N, sex chromosomes), atypical coverage (reference below half or
  above twice the typical depth), and high systematic spread;
- ``basis``: the leading right singular vectors of the normals' residual matrix,
  as GATK's CreateReadCountPanelOfNormals keeps. How many is chosen from the data by
  Gavish & Donoho's (2014) optimal hard threshold for singular values with unknown
  noise, ``omega(beta) x median singular value``;
- ``systematic_variance`` and outlier detection come from *cross-fitted* normals:
  each normal is normalised against a panel built without it (up to 10 folds), so
  its own quirks cannot hide in its own components. The chr17 part of these
  profiles is kept as the null for ERBB2 z-scores;
- ``arm_level_error``: what the cross-fitted normals' chromosome-arm levels scatter
  beyond their standard errors, the error that does not average out over an arm;
  the tumour-fraction fit adds it to every segment.

Outlier normals (much noisier than the others, or with a whole-contig shift such
as a constitutional or clonal-haematopoiesis gain) are reported and left out,
unless asked to keep them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .bins import arm_index, arm_masks, canonical_contig
from .errors import InputError
from .normalize import LN2_SQUARED, denoise, gc_corrected_log2, inverse_variance, mapd, on_amplicon, static_mask
from .segment import neighbour_overdispersion, segment_profile
from .types import Assembly, BinMask, Bins, Panel

MIN_NORMALS = 3
RECOMMENDED_NORMALS = 15
MAX_FOLDS = 10
COVERAGE_LIMIT = 1.0  # |median log2 depth| above this: atypical coverage (bit 1)
# High spread (bit 2): a bin whose variance across cross-fitted normals, relative to the typical bin of its
# kind, exceeds both the chi-square bound below (what n normals can show by chance) and SPREAD_MIN_RATIO.
SPREAD_SIGNIFICANCE_Z = 3.719  # the standard normal's 99.99% quantile
SPREAD_MIN_RATIO = 3.0
SHRINKAGE_NORMALS = 5.0  # prior weight (in normals) pulling per-bin variances to their median
OUTLIER_CONTIG_SHIFT = 0.1  # a normal whose median log2 on a contig is shifted more than this is an outlier
OUTLIER_NOISE_MADS = 5.0
MIN_ARM_BINS = 10  # shorter arms are not measured for arm_level_error (the fit's default min_segment_bins)
UPPER_BOUND_Z = 1.645  # arm_level_error is a one-sided 95% upper bound: a panel cannot vouch for less
# Poisson SDs from the normals' median ratio beyond which a normal's ratio is clipped: one normal's constitutional
# change then moves a bin's reference by at most 3 of its SDs / n, while clipping biases a Poisson mean by < 1%
REFERENCE_CLIP = 3.0
CONSTITUTIONAL_SHIFT = 0.3  # log2: half a one-copy gain (+0.58), under a third of a one-copy loss (-1)
CONSTITUTIONAL_BINS = 5  # ... over at least this many usable bins (50 kb of the locus, 500 kb elsewhere)


@dataclass(frozen=True)
class PanelReport:
    """What building the panel found: for the log, the PoN metadata and the README."""

    used: tuple[str, ...]
    outliers: dict[str, str]  # sample -> reason (left out unless kept)
    n_components: int
    masked: dict[str, int]  # reason (``BinMask.reasons``) -> bins
    noise_gc_only: float  # median MAPD of cross-fitted normals: GC correction only
    noise_reference: float  # ... after dividing by the panel's reference
    noise_denoised: float  # ... after projecting out the panel's components
    arm_level_error: float  # see ``arm_level_error``
    excluded_bins: dict[str, int]  # sample -> bins left out of the reference (``constitutional_changes``)


def chi_square_quantile(z: float, degrees: int) -> float:
    """Wilson-Hilferty: the chi-square quantile matching the normal quantile ``z`` (within ~4% for
    3+ degrees of freedom at z < 4, ample for a masking threshold, and no scipy import at start-up)."""
    return degrees * (1 - 2 / (9 * degrees) + z * np.sqrt(2 / (9 * degrees))) ** 3


def gavish_donoho_rank(singular_values: np.ndarray, n_rows: int, n_columns: int) -> int:
    """How many singular values stand above the noise (optimal hard threshold, unknown noise level)."""
    if len(singular_values) == 0:
        return 0
    beta = min(n_rows, n_columns) / max(n_rows, n_columns)
    omega = 0.56 * beta ** 3 - 0.95 * beta ** 2 + 1.82 * beta + 1.43
    return int(np.sum(singular_values > omega * np.median(singular_values)))


def residual_basis(residuals: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Leading right singular vectors of the residual matrix over ``usable`` bins (zero elsewhere).

    Uses the n x n Gram matrix, so 500 normals x 30,000 bins costs one 500 x 500 eigenproblem.
    At most n - 2 components are kept so that every fold keeps some residual degrees of freedom.
    """
    matrix = residuals[:, usable]
    gram = matrix @ matrix.T
    eigenvalues, vectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1]
    singular = np.sqrt(np.clip(eigenvalues[order], 0, None))
    rank = min(gavish_donoho_rank(singular, *matrix.shape), max(matrix.shape[0] - 2, 0))
    rank = int(min(rank, np.sum(singular > singular[0] * 1e-8))) if len(singular) else 0
    basis = np.zeros((rank, residuals.shape[1]))
    if rank:
        basis[:, usable] = (matrix.T @ vectors[:, order[:rank]] / singular[:rank]).T
    return basis


def normal_ratios(counts: np.ndarray, expected: np.ndarray, excluded: np.ndarray | None = None) -> np.ndarray:
    """Each normal's count over its fitted depth (``normalize.gc_corrected_log2``'s expected count), per bin,
    clipped to ``REFERENCE_CLIP`` Poisson SDs of the normals' median ratio: (n_normals, n_bins); NaN where
    ``excluded`` (``constitutional_changes``).

    Ratios, not log2 depths, so that few fragments per bin bias nothing; clipped, so that one normal much deeper
    than the rest, or off in a bin, cannot pull that bin far, while normals that sampling alone spreads are
    left be. A normal's change over many shallow bins passes the clip bin by bin: ``excluded`` removes it.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(excluded, np.nan, counts / expected) if excluded is not None else counts / expected
        centre = np.nanmedian(ratios, axis=0)
        # the SD from the larger of median and mean: at ~1 fragment per bin the median is often 0
        spread = REFERENCE_CLIP * np.sqrt(np.fmax(centre, np.nanmean(ratios, axis=0)) / expected)
        return np.clip(ratios, centre - spread, centre + spread)


def reference_log2(ratios: np.ndarray) -> np.ndarray:
    """Per-bin log2 depth of the normals relative to their fitted depths: the mean of their ``normal_ratios``.

    Not the median of their log2 depths, the reference until 2026-11-22: with few fragments per bin (the 10 kb
    locus bins of low-pass normals) that median is biased by the counts' discreteness and the pseudo-count,
    +0.05 log2 at 5 fragments per bin and +0.28 at 1, and the bias stays in every sample's ratio unless the
    sample has the normals' depth (a diploid ERBB2 read as plasma CN 1.84 at z -5 against 0.1x normals).
    """
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bin every normal is excluded from: NaN, masked
        return np.log2(np.nanmean(ratios, axis=0))


def constitutional_changes(log2_depth: np.ndarray, expected: np.ndarray, bins: Bins, usable: np.ndarray,
                           assembly: Assembly) -> np.ndarray:
    """(n_normals, n_bins) bool: the bins of each normal inside a segment of its profile against the normals'
    median that is shifted by more than ``CONSTITUTIONAL_SHIFT`` log2 with a 95% interval clear of 0: a
    constitutional gain or loss (or a clonal-haematopoiesis event), which the reference leaves out there.

    The per-bin clip cannot see such a change where bins hold a few fragments (a 1.5-fold gain is within 3
    Poisson SDs at 5 fragments), yet a mean over three normals moved the whole ERBB2 locus by 0.21 log2. The
    median of the normals is the yardstick, not a leave-one-out mean, which one changed normal would shift
    for all the others.
    """
    profiles = np.where(usable, log2_depth - np.nanmedian(log2_depth, axis=0), np.nan)
    arm = arm_index(bins, assembly)
    excluded = np.zeros(log2_depth.shape, dtype=bool)
    for i, profile in enumerate(profiles):
        weight = np.where(usable, LN2_SQUARED * np.maximum(expected[i], 0.5), 0.0)  # Poisson inverse variances
        segments = segment_profile(profile, weight, bins.chrom, arm=arm)
        shifted = (np.abs(segments.log2_ratio) > CONSTITUTIONAL_SHIFT) & (segments.n_bins >= CONSTITUTIONAL_BINS) \
            & ((segments.ci_low > 0) | (segments.ci_high < 0))
        for k in np.flatnonzero(shifted):
            excluded[i, segments.first_bin[k]:segments.end_bin[k]] = True
    return excluded & usable


def efficiency_log2(reference: np.ndarray, ratios: np.ndarray, expected: np.ndarray, usable: np.ndarray,
                    kind: np.ndarray) -> np.ndarray:
    """The reference shrunk towards the median of its bin kind by its own error (empirical Bayes): the bin's
    depth efficiency as the bins' weights use it (``normalize.log2_ratios``).

    A weight from the reference itself would favour bins whose normals happened to read high, exactly where the
    sample's ratio reads low: every weighted level would be biased down by about ln2 x the reference's error
    variance (0.05 log2 with 12 normals of 2 fragments per bin). Shrunk by ``tau^2 / (tau^2 + v)`` (``tau^2``
    the kind's spread of references beyond their error), the bias is at most ``ln2 x tau^2 v / (tau^2 + v)``,
    and where the panel is deep (capture targets) the efficiency is the reference. ``v`` is the Poisson variance
    of the mean of the normals' ``ratios`` from their expected counts, times the kind's median ratio of the
    normals' observed spread to it (weighted counts spread more than Poisson): from the expected counts, not
    each bin's own spread, which in a few normals is noise that would correlate with the reference again.
    """
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        present = np.isfinite(ratios)
        n = present.sum(axis=0)
        mean = np.nanmean(ratios, axis=0)
        poisson = np.sum(np.where(present, 1.0 / (expected * mean), 0.0), axis=0) / n ** 2 / LN2_SQUARED
        spread = np.nanvar(ratios, axis=0, ddof=1) / n / (LN2_SQUARED * mean ** 2) / poisson
    efficiency = np.full(len(reference), np.nan)
    for value in np.unique(kind):
        members = usable & (kind == value)
        if members.any():
            overdispersion = max(float(np.nanmedian(spread[members])), 1.0) if np.isfinite(spread[members]).any() \
                else 1.0
            error = poisson[members] * overdispersion
            centre = np.median(reference[members])
            tau = max(float(np.var(reference[members]) - np.mean(error)), 0.0)
            efficiency[members] = centre + tau / (tau + error) * (reference[members] - centre)
    return efficiency


def coverage_mask(reference: np.ndarray, counts: np.ndarray) -> np.ndarray:
    atypical = ~np.isfinite(reference) | (np.abs(reference) > COVERAGE_LIMIT) | (np.median(counts, axis=0) == 0)
    return np.where(atypical, BinMask.ATYPICAL_DEPTH, 0).astype(np.uint8)


def cross_fit(log2_depth: np.ndarray, counts: np.ndarray, expected: np.ndarray, bins: Bins, usable: np.ndarray,
              excluded: np.ndarray | None = None):
    """Each normal's denoised profile against a panel built from the other folds.

    Returns (denoised, reference-only) residual profiles, both (n_normals, n_bins), NaN where not usable.
    """
    n = len(log2_depth)
    folds = np.arange(n) % min(n, MAX_FOLDS)
    denoised = np.full(log2_depth.shape, np.nan)
    reference_only = np.full(log2_depth.shape, np.nan)
    for fold in np.unique(folds):
        held_out, others = folds == fold, folds != fold
        left_out = None if excluded is None else excluded[others]
        reference = reference_log2(normal_ratios(counts[others], expected[others], left_out))
        known = usable & np.isfinite(reference)  # a few shallow normals can leave a usable bin empty
        residuals = np.where(known, log2_depth[others] - reference, 0.0)
        basis = residual_basis(residuals if left_out is None else np.where(left_out, 0.0, residuals), known)
        for i in np.flatnonzero(held_out):
            residual = np.where(known, log2_depth[i] - reference, 0.0)
            reference_only[i, known] = denoise(residual, basis[:0], bins, known)[known]
            denoised[i, known] = denoise(residual, basis, bins, known)[known]
    return denoised, reference_only


def systematic_variance(denoised: np.ndarray, expected: np.ndarray, usable: np.ndarray, kind: np.ndarray):
    """Per-bin variance of cross-fitted normals beyond Poisson sampling, shrunk towards the median bin of
    the same kind (10 kb locus bins and 100 kb genome bins differ), and the ratio of observed to Poisson
    variance (about chi-square_n / n where a bin is as steady as sampling allows)."""
    n = len(denoised)
    poisson = np.where(usable, 1.0 / (LN2_SQUARED * np.maximum(expected, 0.5)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(usable, np.nanmean(np.where(usable, denoised, 0.0) ** 2, axis=0), np.nan)
        sampling = np.nanmean(np.where(usable, poisson, 1.0), axis=0)
        excess = np.clip(observed - sampling, 0.0, None)
        variance_ratio = observed / sampling
    shrunk = np.zeros(len(excess))
    for value in np.unique(kind):
        members = usable & (kind == value)
        if members.any():
            typical = np.median(excess[members])
            shrunk[members] = (n * excess[members] + SHRINKAGE_NORMALS * typical) / (n + SHRINKAGE_NORMALS)
    return shrunk, np.where(usable, variance_ratio, np.nan)


def arm_level_error(denoised: np.ndarray, weights: np.ndarray, bins: Bins, usable: np.ndarray,
                    assembly: Assembly) -> float:
    """Log2 SD of the error in chromosome-arm levels that bin weights do not predict (GC residue, waves).

    In each cross-fitted normal, every arm's weighted level is compared with the normal's own mean
    level; its variance beyond the arm's standard error (``phi / sum(w)``, ``phi`` from neighbouring
    bins, as a sample's segments get) is averaged over normals and arms. The result is the one-sided
    95% upper bound of that excess, as an SD; 0 where the normals show none.
    """
    fit_bins = usable & ~on_amplicon(bins) & (bins.kind != "locus")
    arms = [arm for arm in arm_masks(bins, fit_bins, assembly) if arm.sum() >= MIN_ARM_BINS]
    if len(arms) < 2:
        return 0.0
    excess = []
    for profile, weight in zip(denoised, weights):
        phi = neighbour_overdispersion(profile, weight, bins.chrom, fit_bins)
        totals = np.array([weight[arm].sum() for arm in arms])
        levels = np.array([np.dot(weight[arm], profile[arm]) for arm in arms]) / totals
        precision = totals / phi
        leverage = precision / precision.sum()
        centre = np.dot(leverage, levels)
        excess.extend((levels - centre) ** 2 / (1 - leverage) - 1 / precision)
    excess = np.array(excess)
    upper = excess.mean() + UPPER_BOUND_Z * excess.std(ddof=1) / np.sqrt(len(excess))
    return float(np.sqrt(max(upper, 0.0)))


def find_outliers(denoised: np.ndarray, bins: Bins, names: tuple[str, ...]) -> dict[str, str]:
    """Normals much noisier than the rest, or with a whole-contig copy-number shift."""
    genome = bins.kind != "locus"
    noise = np.array([mapd(profile, bins.chrom, genome) for profile in denoised])
    centre = np.nanmedian(noise)
    spread = 1.4826 * np.nanmedian(np.abs(noise - centre))
    outliers = {}
    for i, name in enumerate(names):
        if noise[i] > max(centre + OUTLIER_NOISE_MADS * spread, 1.5 * centre):
            outliers[name] = f"noise (MAPD {noise[i]:.3f}) far above the other normals' {centre:.3f}"
            continue
        for contig in bins.contigs:
            on_contig = (bins.chrom == contig) & np.isfinite(denoised[i])
            if on_contig.sum() >= 10:
                shift = float(np.median(denoised[i, on_contig]))
                if abs(shift) > OUTLIER_CONTIG_SHIFT:
                    outliers[name] = f"{contig} shifted by {shift:+.2f} log2 (a copy-number change in a normal?)"
                    break
    return outliers


def _fit(log2_depth, expected, counts, bins: Bins, names, channel: str,
         assembly: Assembly) -> tuple[Panel, np.ndarray, np.ndarray]:
    """The panel, the normals' cross-fitted profiles and the bins of each left out (``constitutional_changes``)."""
    mask = static_mask(bins) | coverage_mask(reference_log2(normal_ratios(counts, expected)), counts)
    excluded = constitutional_changes(log2_depth, expected, bins, mask == 0, assembly)
    ratios = normal_ratios(counts, expected, excluded)
    reference = reference_log2(ratios)
    mask[(mask == 0) & ~np.isfinite(reference)] |= BinMask.ATYPICAL_DEPTH
    denoised, _ = cross_fit(log2_depth, counts, expected, bins, mask == 0, excluded)
    _, variance_ratio = systematic_variance(denoised, expected, mask == 0, bins.kind)
    limit = max(chi_square_quantile(SPREAD_SIGNIFICANCE_Z, len(names)) / len(names), SPREAD_MIN_RATIO)
    for value in np.unique(bins.kind):
        members = (mask == 0) & (bins.kind == value)
        if members.any():
            relative = variance_ratio[members] / np.median(variance_ratio[members])
            mask[np.flatnonzero(members)[relative > limit]] |= BinMask.NOISY
    usable = mask == 0
    if not usable.any():
        raise InputError("panel of normals: every bin is masked (are the normals empty or the bins wrong?)")
    denoised, _ = cross_fit(log2_depth, counts, expected, bins, usable, excluded)
    systematic = systematic_variance(denoised, expected, usable, bins.kind)[0]
    efficiency = efficiency_log2(reference, ratios, expected, usable, bins.kind)
    weights = inverse_variance(expected * np.exp2(efficiency), systematic)
    null_bins = np.flatnonzero(np.array([canonical_contig(c) == "17" for c in bins.chrom.tolist()]))
    panel = Panel(
        channel=channel, bins_checksum=bins.checksum, assembly=bins.assembly, sample_names=tuple(names),
        reference_log2=np.where(usable, reference, np.nan), efficiency_log2=efficiency,
        systematic_variance=systematic,
        mask=mask, basis=residual_basis(np.where(usable & ~excluded, log2_depth - reference, 0.0), usable),
        null_bins=null_bins, null_log2=np.where(excluded, np.nan, denoised)[:, null_bins],
        arm_level_error=arm_level_error(denoised, weights, bins, usable, assembly),
    )
    return panel, denoised, excluded


def build_panel(normal_counts: np.ndarray, bins: Bins, names: tuple[str, ...], *, assembly: Assembly,
                channel: str = "all", keep_outliers: bool = False) -> tuple[Panel, PanelReport]:
    """Build a panel from a (n_normals, n_bins) count matrix of normals counted with ``bins``."""
    names = tuple(names)
    if len(set(names)) != len(names):
        raise InputError("panel of normals: sample names repeat; each normal must be a different sample")
    if len(names) < MIN_NORMALS:
        raise InputError(f"panel of normals: {len(names)} normal(s) given, at least {MIN_NORMALS} are needed "
                         f"({RECOMMENDED_NORMALS}-50 recommended)")
    counts = np.asarray(normal_counts, dtype=np.float64)
    static = static_mask(bins)
    corrected = [gc_corrected_log2(row, bins, static) for row in counts]
    log2_depth = np.vstack([c[0] for c in corrected])
    expected = np.vstack([c[1] for c in corrected])
    panel, denoised, excluded = _fit(log2_depth, expected, counts, bins, names, channel, assembly)
    outliers = find_outliers(denoised, bins, names)
    keep = np.array([name not in outliers or keep_outliers for name in names])
    if not keep.all():
        if keep.sum() < MIN_NORMALS:
            raise InputError(f"panel of normals: only {keep.sum()} normals remain after leaving out outliers "
                             f"({', '.join(outliers)}); add normals or use --keep-outliers")
        names = tuple(n for n, k in zip(names, keep) if k)
        panel, denoised, excluded = _fit(log2_depth[keep], expected[keep], counts[keep], bins, names, channel,
                                         assembly)
    _, reference_only = cross_fit(log2_depth[keep], counts[keep], expected[keep], bins, panel.usable, excluded)
    gc_only = log2_depth[keep] - np.nanmedian(np.where(panel.usable, log2_depth[keep], np.nan), axis=1, keepdims=True)
    genome = (bins.kind != "locus") & panel.usable
    noise = {label: float(np.median([mapd(p, bins.chrom, genome) for p in profiles]))
             for label, profiles in (("gc", gc_only), ("reference", reference_only), ("denoised", denoised))}
    masked = {reason: int(np.sum((panel.mask & bit) != 0)) for reason, bit in BinMask.reasons().items()}
    report = PanelReport(used=names, outliers=outliers, n_components=panel.basis.shape[0], masked=masked,
                         noise_gc_only=noise["gc"], noise_reference=noise["reference"],
                         noise_denoised=noise["denoised"], arm_level_error=panel.arm_level_error,
                         excluded_bins={name: int(n) for name, n in zip(names, excluded.sum(axis=1)) if n})
    return panel, report


def check_counted_like_panel(bins: Bins, filters: dict | None, panel: Panel, panel_filters: dict, source: str,
                             filters_source: str, panel_source: str) -> None:
    """Refuse counts (made, or about to be made, with ``bins`` from ``source`` and ``filters``) that the panel's
    normals were not counted like: 'call' and 'run' check their inputs, 'count --pon' before the long count."""
    check_compatible(bins, panel, source, panel_source)
    check_same_filters(filters, panel_filters, filters_source, panel_source)


def check_same_filters(filters: dict | None, panel_filters: dict, source: str, panel_source: str) -> None:
    """Refuse counts made with other count filters than the panel's normals: a fragment-length window, another
    MAPQ or other flags change every bin's depth against the reference (a 90-150 bp window read a TF-20%
    sample as 39.5%, plasma CN 9.4 for 5.6, with QC passing)."""
    if filters != panel_filters:
        raise InputError(f"{source}: other count filters than the normals of {panel_source} were counted with "
                         f"({filter_differences(filters, panel_filters)}); count the sample with the options its "
                         "panel's normals were counted with")


# the 'count' option that sets each recorded filter, and for windows the fields of its MIN-MAX
FILTER_OPTIONS = (("--min-mapq", ("min_mapq",)), ("--exclude-flags", ("exclude_flags",)),
                  ("--fragment-length", ("min_length", "max_length")), ("--short-length", ("short_min", "short_max")))


def filter_differences(filters: dict | None, others: dict | None) -> str:
    """The count options that differ, as they are given: '--fragment-length 90-150 vs none'."""
    filters, others = filters or {}, others or {}

    def shown(values: dict, keys: tuple[str, ...]) -> str:
        low, high = values.get(keys[0]), values.get(keys[-1])
        if low is None and high is None:
            return "not recorded"
        if len(keys) == 1:
            return hex(low) if keys[0] == "exclude_flags" and isinstance(low, int) else str(low)
        if low == 0 and isinstance(high, int) and high >= 1 << 40:  # counts.NO_MAXIMUM: no limit
            return "none"
        return f"{low}-" + ("" if isinstance(high, int) and high >= 1 << 40 else str(high))

    known = {key for _, keys in FILTER_OPTIONS for key in keys}
    options = [(option, keys) for option, keys in FILTER_OPTIONS] + [
        (key, (key,)) for key in sorted((set(filters) | set(others)) - known)]  # from an edited or newer file
    return ", ".join(f"{option} {shown(filters, keys)} vs {shown(others, keys)}" for option, keys in options
                     if any(filters.get(key) != others.get(key) for key in keys))


def check_compatible(bins: Bins, panel: Panel, source: str, panel_source: str | None = None) -> None:
    """Refuse counts (or bins) from ``source`` made with other bins or on another assembly than the panel,
    and a panel whose arrays do not fit the bins its metadata names (an edited file)."""
    the_panel = f"the panel of normals {panel_source}" if panel_source else "the panel of normals"
    if bins.assembly != panel.assembly:
        raise InputError(f"{source}: bins are {bins.assembly} but {the_panel} is {panel.assembly}; "
                         "use a panel built on the same assembly")
    if bins.checksum != panel.bins_checksum:
        raise InputError(f"{source}: made with other bins than {the_panel} "
                         f"(bins checksum {bins.checksum[:12]} vs {panel.bins_checksum[:12]}); "
                         "count with the bins the panel was built from")
    if len(panel.reference_log2) != len(bins):
        raise InputError(f"{panel_source or 'panel of normals'}: holds {len(panel.reference_log2):,} bins but "
                         f"its bins checksum names {len(bins):,} (an edited file?); rebuild it with 'her2cnv pon'")
