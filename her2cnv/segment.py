"""Supporting functions for segmentation: runs of bins that share one copy level.

Each chromosome is cut into segments by PELT (Killick, Fearnhead & Eckley 2012,
exact optimal partitioning with pruning) for a change in mean under a weighted
Gaussian cost. Four things adapt the textbook method to ctDNA profiles:

* Overdispersion. Bin weights (inverse variances) are right only up to a
  factor: real ratios scatter more than counting noise says. One factor
  ``phi`` is estimated for the whole profile from neighbouring-bin differences,
  which are unaffected by the few true change points, and the penalty is
  measured in units of ``phi``. Scaling all weights by a constant therefore
  changes nothing but ``phi``.
* Outliers. Before fitting, each bin is clipped to within ``WINSOR_SDS``
  robust SDs of a running median whose half-width is ``min_bins - 1``: a lone
  outlier is far from its window median and is pulled in, but any run of
  ``min_bins`` consistent bins holds the majority of each of its windows, so it
  is its own median and survives intact (a 10-30 bin ERBB2 amplicon is never
  smoothed away). Segment means use the raw values.
* Masking. NaN bins are skipped while fitting and counting, but the segments
  still tile every chromosome in bin-index space.
* Arms. Given each bin's chromosome arm, each arm is segmented on its own, so
  a centromere is always a boundary (CNVkit likewise treats arms as units:
  ``cnvkit.py segment -m none`` gives arm-level averages). Most colorectal copy
  changes are whole-arm events, and an arm gain at a few percent tumour
  fraction (8q at 2%: +0.014 log2) is too small for PELT to pay for a change
  point at the centromere; cut there for free, the arm is a segment of its own
  for the tumour-fraction fit.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .types import Segments

# Median of the chi-square distribution with one degree of freedom (scipy.stats.chi2.ppf(0.5, 1)).
CHI2_1_MEDIAN = 0.45493642311957283
# Two-sided 95% normal quantile.
Z_95 = 1.959963984540054
# Normal consistency constant of the median absolute deviation.
MAD_TO_SD = 1.482602218505602
# Clip bins further than this many robust SDs from their running median.
WINSOR_SDS = 4.0
# Default penalty per change point = DEFAULT_PENALTY_PER_LOG_BIN * log(unmasked bins on the chromosome),
# in units of phi. BIC would use 2 (a change point adds a location and a level); 3 keeps false change
# points on Gaussian noise to about one per 100 genomes of 30,000 bins (see ``segment_profile``).
DEFAULT_PENALTY_PER_LOG_BIN = 3.0
# Lower bound on phi, in the weights' units. phi < 1 is legitimate (weights may be given only up to a
# constant, or be conservative); the floor only bites when at least half of all neighbouring differences
# are exactly zero (noiseless or heavily quantised input), where it keeps the penalty positive.
MIN_OVERDISPERSION = 1e-6
# How often (in bins) PELT prunes its candidate set; pruning is exact at any frequency, this only trades
# the cost of compacting the set against the cost of carrying dead candidates.
PRUNE_EVERY = 16


def contig_runs(chrom: np.ndarray) -> list[tuple[str, int, int]]:
    """``(label, first_bin, end_bin)`` for each contig, in input order; each contig must be one contiguous run."""
    if len(chrom) == 0:
        return []
    change = np.flatnonzero(chrom[1:] != chrom[:-1]) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, len(chrom)]
    labels = [str(chrom[i]) for i in starts]
    if len(set(labels)) != len(labels):
        repeated = next(label for label in labels if labels.count(label) > 1)
        raise InputError(f"segment: the bins of contig {repeated} are not contiguous; sort the profile by position")
    return list(zip(labels, starts.tolist(), ends.tolist()))


def arm_runs(runs: list[tuple[str, int, int]], arm: np.ndarray | None) -> list[tuple[str, int, int]]:
    """``contig_runs`` cut further wherever ``arm`` changes inside a contig (None: unchanged)."""
    if arm is None:
        return runs
    cut = []
    for label, first, end in runs:
        changes = (np.flatnonzero(arm[first + 1:end] != arm[first:end - 1]) + first + 1).tolist()
        edges = [first, *changes, end]
        cut += [(label, a, b) for a, b in zip(edges[:-1], edges[1:])]
    return cut


def estimate_overdispersion(values: list[np.ndarray], weights: list[np.ndarray]) -> float:
    """Variance inflation of the data over ``1/weight``, from neighbouring-bin differences.

    For neighbours with no change between them, ``x_j - x_i`` has variance
    ``phi * (1/w_i + 1/w_j)``, so ``w_i w_j / (w_i + w_j) * (x_j - x_i)^2`` is
    ``phi`` times a chi-square(1) variable. Its median over all neighbour pairs
    (within each chromosome, skipping masked bins) divided by the chi-square(1)
    median estimates ``phi``; the median ignores the few pairs that straddle a
    real change point. Returns 1 (trust the weights) when there are no pairs.
    """
    pooled = np.concatenate([np.empty(0)] + [w[:-1] * w[1:] / (w[:-1] + w[1:]) * np.diff(x) ** 2
                                             for x, w in zip(values, weights)])
    if len(pooled) == 0:
        return 1.0
    return max(float(np.median(pooled)) / CHI2_1_MEDIAN, MIN_OVERDISPERSION)


def neighbour_overdispersion(log2_ratio: np.ndarray, weight: np.ndarray, chrom: np.ndarray,
                             selection: np.ndarray) -> float:
    """``estimate_overdispersion`` over the selected unmasked bins of a profile, neighbours taken within each
    contig, never below 1: intervals are widened for extra scatter, never narrowed."""
    index = np.flatnonzero(selection & np.isfinite(log2_ratio))
    if len(index) < 6:
        return 1.0
    runs = contig_runs(chrom[index])
    return max(1.0, estimate_overdispersion([log2_ratio[index[a:b]] for _, a, b in runs],
                                            [weight[index[a:b]] for _, a, b in runs]))


def running_median(x: np.ndarray, half_width: int) -> np.ndarray:
    """Median of ``x[i - half_width : i + half_width + 1]``, with the ends mirrored (``x`` longer than ``half_width``)."""
    padded = np.pad(x, half_width, mode="reflect")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half_width + 1), axis=1)


def winsorise(values: list[np.ndarray], weights: list[np.ndarray], min_bins: int) -> list[np.ndarray]:
    """Each chromosome's values clipped to ``WINSOR_SDS`` robust SDs around a running median.

    The window is ``2 * min_bins - 1`` bins, so a run of ``min_bins`` or more
    bins holds the majority of every window centred on one of its bins: when
    the run stands clear of its surroundings, its windows' medians come from
    the run itself and it keeps its level, while one or two isolated outliers
    are pulled back towards their neighbours. The robust SD is the MAD of the
    weight-standardised residuals pooled over the genome, so the clipping band
    of a bin widens with its own noise (``1/sqrt(w)``) and the fine, low-weight
    ERBB2 locus bins are not clipped more than others. Residuals from so short
    a window understate the noise (MAD about 0.75 of its SD), so the band is
    about 3 noise SDs and touches about 0.6% of the bins of Gaussian noise,
    which barely moves a fit. Chromosomes shorter than a window are returned
    unchanged; they are too short to split anyway.
    """
    half_width = min_bins - 1
    long_enough = [half_width > 0 and len(x) > 2 * half_width for x in values]
    if not any(long_enough):
        return values
    medians = [running_median(x, half_width) if long else x for x, long in zip(values, long_enough)]
    pooled = np.abs(np.concatenate([(x - m) * np.sqrt(w) for x, m, w, long
                                    in zip(values, medians, weights, long_enough) if long]))
    robust_sd = MAD_TO_SD * float(np.median(pooled))
    return [np.clip(x, m - WINSOR_SDS * robust_sd / np.sqrt(w), m + WINSOR_SDS * robust_sd / np.sqrt(w))
            for x, m, w in zip(values, medians, weights)]


def pelt_boundaries(x: np.ndarray, w: np.ndarray, penalty: float, min_bins: int) -> np.ndarray:
    """Segment boundaries ``[0, b_1, ..., n]`` minimising total weighted cost + ``penalty`` per change point.

    Exact optimal partitioning over segments of at least ``min_bins`` values.
    With prefix sums ``W`` of ``w`` and ``S`` of ``w x``, a segment ``(s, t]``
    costs ``sum w x^2 - (S_t - S_s)^2 / (W_t - W_s)``; the ``sum w x^2`` terms
    add up to the same total for every partition, so the recursion runs on
    ``G(t) = penalty + min_s [G(s) - (S_t - S_s)^2 / (W_t - W_s)]`` with
    ``G(0) = -penalty``, which avoids subtracting large sums of squares.

    PELT pruning: once ``G(s) - D(s, t) > G(t)``, ``s`` can never again be the
    best last change point for any end ``u >= t + min_bins`` (the cost is
    additive, splitting never increases it). Because ends between ``t`` and
    ``t + min_bins`` cannot use ``t`` itself, a pruning decision taken at ``t``
    is applied only ``min_bins`` steps later.
    """
    n = len(x)
    if n < 2 * min_bins:
        return np.array([0, n])
    cum_w = np.r_[0.0, np.cumsum(w)]
    cum_wx = np.r_[0.0, np.cumsum(w * x)]
    best = np.full(n + 1, np.inf)  # G(t)
    best[0] = -penalty
    last_change = np.zeros(n + 1, dtype=np.int64)
    # Candidate last change points, kept compact in the first `n_candidates` slots.
    position = np.empty(n + 1, dtype=np.int64)
    candidate_g = np.empty(n + 1)
    candidate_w = np.empty(n + 1)
    candidate_wx = np.empty(n + 1)
    n_candidates = 0
    pending_prune = None  # (apply at t, keep mask over the first len(mask) candidates)
    for t in range(min_bins, n + 1):
        if pending_prune is not None and pending_prune[0] == t:
            keep = np.r_[np.flatnonzero(pending_prune[1]), np.arange(len(pending_prune[1]), n_candidates)]
            n_candidates = len(keep)
            for array in (position, candidate_g, candidate_w, candidate_wx):
                array[:n_candidates] = array[keep]
            pending_prune = None
        newest = t - min_bins
        if np.isfinite(best[newest]):
            position[n_candidates] = newest
            candidate_g[n_candidates] = best[newest]
            candidate_w[n_candidates] = cum_w[newest]
            candidate_wx[n_candidates] = cum_wx[newest]
            n_candidates += 1
        if n_candidates == 0:
            continue
        totals = candidate_g[:n_candidates] - (cum_wx[t] - candidate_wx[:n_candidates]) ** 2 / (
            cum_w[t] - candidate_w[:n_candidates])
        winner = int(np.argmin(totals))
        best[t] = totals[winner] + penalty
        last_change[t] = position[winner]
        if pending_prune is None and t % PRUNE_EVERY == 0:
            pending_prune = (t + min_bins, totals <= best[t])
    boundaries = [n]
    while boundaries[-1] > 0:
        boundaries.append(int(last_change[boundaries[-1]]))
    return np.array(boundaries[::-1])


def segment_profile(log2_ratio: np.ndarray, weight: np.ndarray, chrom: np.ndarray, *,
                    arm: np.ndarray | None = None, penalty: float | None = None, min_bins: int = 3) -> Segments:
    """Segments of constant copy ratio tiling every contig of a log2-ratio profile.

    ``log2_ratio`` is NaN for masked bins; ``weight`` is the inverse variance of
    each unmasked bin (only its relative size across bins matters); ``chrom``
    labels each bin, with each contig's bins contiguous and in genomic order.
    ``arm`` (optional, e.g. ``bins.arm_index``) labels each bin's chromosome
    arm: every arm is then segmented on its own, and called a chromosome below.

    ``penalty`` is the cost of one change point in units of the overdispersion
    ``phi`` (a change point is accepted when it lowers the weighted sum of
    squares by more than ``penalty * phi``). The default,
    ``DEFAULT_PENALTY_PER_LOG_BIN * log(n)`` with ``n`` the unmasked bins on the
    chromosome, was calibrated on Gaussian noise with the stated weights (23
    chromosomes of 467-2,490 bins, 30,432 bins, per-bin SD 0.1-0.2 and a
    130-bin stretch at SD 0.3, ``min_bins=3``): a factor of 3 gave 3 false
    change points in 400 simulated genomes, 2.5 gave 4 in 100 and BIC's 2 gave
    26 in 100. The price is sensitivity: a change of ``d`` log2 over ``k`` bins
    of noise SD ``sd`` is found when ``k (d/sd)^2`` clearly exceeds the penalty
    of its change points (about 37-47 for the two ends of a focal gain on a
    500-2,500-bin chromosome), so a 15-bin amplicon at SD 0.3 needs to sit about
    0.5 log2 above its surroundings; one 0.8 above scores about 107.

    Each segment has at least ``min_bins`` unmasked bins (a chromosome with
    fewer stays whole). Masked bins between two segments belong to the left one,
    leading masked bins to the first; a contig with no unmasked bins is one
    segment with NaN level and ``n_bins`` 0. The level is the weighted mean of
    the raw (not winsorised) values, and its 95% interval is
    ``mean +- 1.96 sqrt(phi / sum w)``.
    """
    log2_ratio = np.asarray(log2_ratio, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    chrom = np.asarray(chrom).astype(str)
    if not len(log2_ratio) == len(weight) == len(chrom) == (len(chrom) if arm is None else len(arm)):
        raise InputError(f"segment: {len(log2_ratio)} log2 ratios, {len(weight)} weights and "
                         f"{len(chrom)} contig labels (and arm labels, if given); all must have one value per bin")
    if min_bins < 1:
        raise InputError(f"segment: min_bins must be at least 1, got {min_bins}")
    if penalty is not None and not penalty > 0:
        raise InputError(f"segment: the change-point penalty must be positive, got {penalty}")
    unmasked = ~np.isnan(log2_ratio)
    bad = unmasked & ~(np.isfinite(log2_ratio) & np.isfinite(weight) & (weight > 0))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"segment: bin {i} ({chrom[i]}) has log2 ratio {log2_ratio[i]} and weight {weight[i]}; "
                         "unmasked bins need a finite ratio and a positive weight (mask the bin as NaN instead)")

    runs = arm_runs(contig_runs(chrom), None if arm is None else np.asarray(arm))
    kept = [np.flatnonzero(unmasked[first:end]) + first for _, first, end in runs]
    values = [log2_ratio[i] for i in kept]
    weights = [weight[i] for i in kept]
    phi = estimate_overdispersion(values, weights)
    clipped = winsorise(values, weights, min_bins)

    rows = []
    for (label, first, end), index, x, w, x_fit in zip(runs, kept, values, weights, clipped):
        if len(index) == 0:
            rows.append((label, first, end, 0, np.nan, np.nan, np.nan))
            continue
        chromosome_penalty = DEFAULT_PENALTY_PER_LOG_BIN * np.log(len(x)) if penalty is None else penalty
        # Centring keeps the prefix sums small; it changes no cost.
        boundaries = pelt_boundaries(x_fit - np.median(x_fit), w, chromosome_penalty * phi, min_bins)
        for k, (a, b) in enumerate(zip(boundaries[:-1], boundaries[1:])):
            total_w = w[a:b].sum()
            level = float(np.dot(w[a:b], x[a:b]) / total_w)
            margin = Z_95 * np.sqrt(phi / total_w)
            first_bin = first if k == 0 else int(index[a])
            end_bin = end if b == len(x) else int(index[b])
            rows.append((label, first_bin, end_bin, b - a, level, level - margin, level + margin))

    columns = list(zip(*rows)) if rows else [()] * 7
    return Segments(chrom=np.array(columns[0], dtype=str),
                    first_bin=np.array(columns[1], dtype=np.int64),
                    end_bin=np.array(columns[2], dtype=np.int64),
                    n_bins=np.array(columns[3], dtype=np.int64),
                    log2_ratio=np.array(columns[4], dtype=np.float64),
                    ci_low=np.array(columns[5], dtype=np.float64),
                    ci_high=np.array(columns[6], dtype=np.float64))
