"""PNG figures of a call: the genome-wide profile and the chr17 view with the amplicon genes.

Functions return PNG bytes (``io`` writes them), so reports can embed the same
figures. matplotlib is imported lazily with the Agg backend: no display needed.
"""
from __future__ import annotations

import io as _io

import numpy as np

from .bins import canonical_contig
from .types import Assembly, Bins, Erbb2Call, Profile, Segments

FIGURES = ("genome", "chr17")  # a call's PNGs: SAMPLE.genome.png (genome_plot), SAMPLE.chr17.png (chr17_plot)
POINT_COLOUR = "#9aa5b1"
SEGMENT_COLOUR = "#c0392b"
GENE_COLOUR = "#2c3e50"
PLASMA_COPY_TICKS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384)
GENE_LABEL_GAP = 4  # pixels between a gene's label and the next gene on its row
GENE_LABEL_OFFSET = 2  # points from a gene's end to its label


def _figure(width: float, height: float, rows: int = 1):
    plt = _pyplot()
    return plt, plt.subplots(rows, 1, figsize=(width, height), dpi=100)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(plt, figure) -> bytes:
    buffer = _io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _top(levels: np.ndarray, floor: float) -> float:
    """The top of a log2 axis: ``floor``, raised to show the highest segment (plasma copy numbers reach 120 and
    more: HERACLES-A), up to log2 7.5 (PCN ~360)."""
    finite = levels[np.isfinite(levels)]
    return float(min(max(floor, finite.max() + 0.4), 7.5)) if len(finite) else floor


def genome_plot(profile: Profile, segments: Segments, bins: Bins, baseline: float, title: str) -> bytes:
    """log2 ratio per bin along the genome, with segment levels, relative to the diploid baseline."""
    plt, (figure, axes) = _figure(12, 3.6)
    offsets, position, ticks = {}, 0, []
    for contig in bins.contigs:
        on = bins.chrom == contig
        offsets[contig] = position - bins.start[on].min()
        ticks.append((position + (bins.end[on].max() - bins.start[on].min()) / 2, canonical_contig(contig)))
        position += bins.end[on].max() - bins.start[on].min()
        axes.axvline(position, color="#e0e0e0", lw=0.8)
    x = (bins.start + bins.end) / 2 + np.array([offsets[c] for c in bins.chrom.tolist()])
    axes.scatter(x, profile.log2_ratio - baseline, s=2, color=POINT_COLOUR, rasterized=True)
    for i in range(len(segments)):
        first, last = segments.first_bin[i], segments.end_bin[i] - 1
        axes.plot([bins.start[first] + offsets[str(bins.chrom[first])], bins.end[last] + offsets[str(bins.chrom[last])]],
                  [segments.log2_ratio[i] - baseline] * 2, color=SEGMENT_COLOUR, lw=2)
    axes.set_xticks([t for t, _ in ticks], [label for _, label in ticks], fontsize=8)
    axes.set_ylim(-1.5, _top(segments.log2_ratio - baseline, 3.0))
    axes.axhline(0, color="black", lw=0.6)
    axes.set_ylabel("log2 ratio to diploid")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    return _png(plt, figure)


def chr17_plot(profile: Profile, segments: Segments, bins: Bins, baseline: float, assembly: Assembly,
               call: Erbb2Call) -> bytes:
    """Left: all of chr17. Right: the 17q12 locus, with plasma copy number on the right axis, above a track of
    the amplicon genes, each named."""
    plt = _pyplot()
    figure, panels = plt.subplot_mosaic([["whole", "locus"], ["whole", "genes"]], figsize=(11, 4.6), dpi=100,
                                        width_ratios=(1.6, 1), height_ratios=(3, 1.25))
    whole, locus, genes = panels["whole"], panels["locus"], panels["genes"]
    on17 = np.array([canonical_contig(c) == "17" for c in bins.chrom.tolist()], dtype=bool)
    middle = (bins.start + bins.end) / 2e6
    relative = profile.log2_ratio - baseline
    on17_segments = np.array([canonical_contig(c) == "17" for c in segments.chrom.tolist()], dtype=bool)
    _, locus_start, locus_end = assembly.locus
    for axes, shown in ((whole, on17), (locus, on17 & (bins.end > locus_start) & (bins.start < locus_end))):
        axes.scatter(middle[shown], relative[shown], s=5, color=POINT_COLOUR)
        for i in np.flatnonzero(on17_segments):
            axes.plot([bins.start[segments.first_bin[i]] / 1e6, bins.end[segments.end_bin[i] - 1] / 1e6],
                      [segments.log2_ratio[i] - baseline] * 2, color=SEGMENT_COLOUR, lw=2)
        axes.axhline(0, color="black", lw=0.6)
        axes.set_ylim(-1.5, _top(segments.log2_ratio[on17_segments] - baseline, 3.2))
    whole.set_xlabel("chr17 position (Mb)")
    whole.axvline(assembly.arm_boundaries["chr17"] / 1e6, color="#bdc3c7", ls="--", lw=0.8)
    whole.axvspan(locus_start / 1e6, locus_end / 1e6, color="#f5b041", alpha=0.3, lw=0)
    whole.set_ylabel("log2 ratio to diploid")
    for axes in (locus, genes):
        axes.set_xlim(locus_start / 1e6, locus_end / 1e6)
    locus.tick_params(labelbottom=False)
    right = locus.secondary_yaxis("right", functions=(lambda v: 2 * 2 ** np.asarray(v),
                                                      lambda c: np.log2(np.clip(np.asarray(c), 1e-3, None) / 2)))
    bottom, top = locus.get_ylim()
    ticks = [c for c in PLASMA_COPY_TICKS if bottom <= np.log2(c / 2) <= top]
    right.set_yticks(ticks if top <= 5 else [c for c in ticks if c & (c - 1) == 0])  # above PCN 64: powers of 2
    right.set_ylabel("plasma copy number")
    whole.set_title(f"{call.sample}: {call.status.replace('_', ' ')}", fontsize=10)
    locus.set_title(f"17q12 amplicon: ERBB2 plasma copy number {call.plasma_copy_number:.2f}", fontsize=9)
    genes.set_xlabel("chr17 position (Mb)")
    genes.set_yticks([])
    for side in ("left", "right", "top"):
        genes.spines[side].set_visible(False)
    figure.tight_layout()
    _gene_track(genes, figure, assembly)
    return _png(plt, figure)


def _gene_track(axes, figure, assembly: Assembly) -> None:
    """Draw the amplicon genes on ``axes``, each with its name after it, packed into as few rows as keep every
    bar and name clear of the others (9 genes share 160 kb beside ERBB2). Drawn after the layout is fixed, as
    the packing is in pixels."""
    renderer = figure.canvas.get_renderer()
    left, right = axes.get_xlim()
    pixels_per_mb = axes.get_window_extent(renderer).width / (right - left)
    genes = zip(assembly.gene_names, assembly.gene_starts / 1e6, assembly.gene_ends / 1e6)
    shown = [(name, start, end) for name, start, end in genes if start < right and end > left]
    labels = [axes.annotate(name, (end, 0), xytext=(GENE_LABEL_OFFSET, 0), textcoords="offset points", va="center",
                            fontsize=6, fontweight="bold" if name == "ERBB2" else "normal") for name, _, end in shown]
    offset = GENE_LABEL_OFFSET * figure.dpi / 72  # points to pixels
    spans = [((start - left) * pixels_per_mb,
              (end - left) * pixels_per_mb + offset + label.get_window_extent(renderer).width)
             for (_, start, end), label in zip(shown, labels)]
    rows = gene_rows(spans, GENE_LABEL_GAP)
    for (name, start, end), label, row in zip(shown, labels, rows):
        axes.plot([start, end], [row, row], lw=4, color="#d35400" if name == "ERBB2" else GENE_COLOUR,
                  solid_capstyle="butt")
        label.xy = (end, row)
    axes.set_ylim(max(max(rows, default=0), 4) + 0.8, -0.8)


def gene_rows(spans: list[tuple[float, float]], gap: float) -> list[int]:
    """A row for each (left, right) span, in the given order: the first row where it starts more than ``gap``
    after the last span placed there ends (greedy interval packing: as many rows as spans overlap at most,
    when spans come sorted by their left ends)."""
    row_ends: list[float] = []
    rows = []
    for left, right in spans:
        row = next((r for r, end in enumerate(row_ends) if left > end + gap), len(row_ends))
        if row == len(row_ends):
            row_ends.append(right)
        else:
            row_ends[row] = right
        rows.append(row)
    return rows


def trend_plot(patient: str, dates: list[str], plasma: list[float], plasma_ci: list, fraction: list,
               fraction_ci: list, fraction_limit: list, measured: list[bool]) -> bytes:
    """ERBB2 plasma copy number (top) and tumour fraction (bottom) over time, with 95% intervals.

    A tumour fraction below detection is drawn as an open triangle at its limit. A timepoint that failed QC
    (``measured`` False) is an open grey circle off the lines, without an interval: its numbers are not
    measurements to follow.
    """
    import datetime

    plt, (figure, (top, bottom)) = _figure(7, 5, rows=2)
    days = np.array([datetime.date.fromisoformat(d).toordinal() for d in dates]) - \
        datetime.date.fromisoformat(dates[0]).toordinal()
    good = np.array(measured, dtype=bool)
    low = np.array([c[0] if c else np.nan for c in plasma_ci], dtype=float)
    high = np.array([c[1] if c else np.nan for c in plasma_ci], dtype=float)
    values = np.array(plasma, dtype=float)
    below, above = np.fmax(values - low, 0.0), np.fmax(high - values, 0.0)  # NaN (no interval): no bar
    top.errorbar(days[good], values[good], yerr=[below[good], above[good]], fmt="o-", color=SEGMENT_COLOUR, capsize=4)
    if (~good).any():
        top.plot(days[~good], values[~good], "o", mfc="none", color=POINT_COLOUR, ms=8, label="QC failed")
        top.legend(fontsize=7, loc="best")
    top.axhline(2, color="black", lw=0.6)
    top.set_ylabel("ERBB2 plasma copy number")
    top.set_title(f"{patient}: ERBB2 and tumour fraction over time", fontsize=10)
    for day, value, limit, interval, ok in zip(days, fraction, fraction_limit, fraction_ci, good):
        if not ok:
            continue
        if value is None:
            bottom.plot([day], [limit * 100], marker="v", mfc="none", color=GENE_COLOUR, ms=8)
        else:
            bottom.errorbar([day], [value * 100], yerr=[[(value - interval[0]) * 100], [(interval[1] - value) * 100]],
                            fmt="o", color=GENE_COLOUR, capsize=4)
    detected = [(d, v * 100) for d, v, ok in zip(days, fraction, good) if v is not None and ok]
    if len(detected) > 1:
        bottom.plot(*zip(*detected), color=GENE_COLOUR, lw=1)
    if any(v is None and ok for v, ok in zip(fraction, good)):
        bottom.plot([], [], marker="v", mfc="none", color=GENE_COLOUR, ls="none",
                    label="below detection (at the limit)")
        bottom.legend(fontsize=7, loc="best")
    bottom.set_ylabel("tumour fraction (%)")
    bottom.set_xlabel(f"days since {dates[0]}")
    bottom.set_ylim(bottom=0)
    for axes in (top, bottom):
        axes.set_xticks(days, [f"{d}\n{label}" for d, label in zip(days, dates)], fontsize=7)
    figure.tight_layout()
    return _png(plt, figure)
