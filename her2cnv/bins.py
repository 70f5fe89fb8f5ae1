"""Supporting functions for the 'bins' command: where fragments are counted.

Two layouts. Low-pass WGS: fixed-width genome-wide bins (default 100 kb) with
the 17q12 amplicon region tiled by fine bins (default 10 kb), so the ~42 kb
ERBB2 gene is measured by its own bins instead of filling 4% of a 1 Mb bin.
Capture panels: one bin per merged target, optionally with off-target bins
between targets. Every bin is labelled with the amplicon genes it overlaps.

The default 100 kb genome bin: at 0.5x paired 150 bp reads a bin holds ~170
fragments (Poisson CV ~8%), arms of 20-100 Mb hold 200-1000 bins, so arm-level
levels are precise to ~0.5% and the genome has ~29,000 bins, small enough for a
panel of 500 normals in memory. At 0.1x ichorCNA-style 500 kb-1 Mb bins are the
better choice (``--bin-size``).
"""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .types import Assembly, Bins, canonical_contig

DEFAULT_BIN_SIZE = 100_000
DEFAULT_LOCUS_BIN_SIZE = 10_000
MAX_LOCUS_BIN_SIZE = 10_000


def arm_boundary_per_bin(bins: Bins, assembly: Assembly) -> np.ndarray:
    """The p/q boundary (centromere) of each bin's contig; 0 for contigs the assembly gives none."""
    boundary_of = {canonical_contig(c): b for c, b in assembly.arm_boundaries.items()}
    boundaries = np.zeros(len(bins), dtype=np.int64)
    for contig in bins.contigs:
        boundaries[bins.chrom == contig] = boundary_of.get(canonical_contig(contig), 0)
    return boundaries


def arm_index(bins: Bins, assembly: Assembly) -> np.ndarray:
    """1 for bins on a q arm (starting at or after the centromere), 0 for the p arm: segmentation never
    joins the two arms (see ``segment.segment_profile``)."""
    return (bins.start >= arm_boundary_per_bin(bins, assembly)).astype(np.int8)


def arm_masks(bins: Bins, selection: np.ndarray, assembly: Assembly) -> list[np.ndarray]:
    """The selected genome bins (not fine locus bins) of each chromosome arm, p then q, in contig order;
    arms with no selected bin are left out (so are bins across the boundary). The arms are the units of
    the tumour-fraction model's events."""
    boundary = arm_boundary_per_bin(bins, assembly)
    genome = selection & (bins.kind != "locus")
    arms = []
    for contig in bins.contigs:
        on = genome & (bins.chrom == contig)
        arms += [arm for arm in (on & (bins.end <= boundary), on & (bins.start >= boundary)) if arm.any()]
    return arms


def detect_assembly(contig_lengths: dict[str, int], assemblies: list[Assembly], source: str) -> Assembly:
    """The assembly whose chr17 length matches ``contig_lengths`` (chr17 must be present)."""
    by_name = {canonical_contig(c): n for c, n in contig_lengths.items()}
    if "17" not in by_name:
        raise InputError(f"{source}: no chr17 (or 17) contig; her2cnv needs chr17 to measure ERBB2")
    for assembly in assemblies:
        if assembly.contig_lengths["chr17"] == by_name["17"]:
            return assembly
    known = ", ".join(f"{a.name} {a.contig_lengths['chr17']:,}" for a in assemblies)
    raise InputError(f"{source}: chr17 is {by_name['17']:,} bp, which matches no supported assembly ({known})")


def default_contigs(contig_lengths: dict[str, int]) -> list[str]:
    """Autosomes and chrX in the given order; chrY (sex- and mappability-dependent) and alt/unplaced contigs are left out."""
    wanted = {str(i) for i in range(1, 23)} | {"X"}
    return [c for c in contig_lengths if canonical_contig(c) in wanted]


def _tile(start: int, end: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(start, end, width, dtype=np.int64)
    return starts, np.minimum(starts + width, end)


def genome_layout(contig_lengths: dict[str, int], assembly: Assembly, contigs: list[str],
                  bin_size: int = DEFAULT_BIN_SIZE, locus_bin_size: int = DEFAULT_LOCUS_BIN_SIZE):
    """Genome-wide bins with fine bins over the amplicon locus; returns (chrom, start, end, kind)."""
    if bin_size < 1000:
        raise InputError(f"--bin-size {bin_size} is too small (use >= 1000 bp)")
    if not 100 <= locus_bin_size <= MAX_LOCUS_BIN_SIZE:
        raise InputError(f"--locus-bin-size must be 100-{MAX_LOCUS_BIN_SIZE} bp, got {locus_bin_size}")
    _, locus_start, locus_end = assembly.locus
    pieces = []
    for contig in contigs:
        length = contig_lengths[contig]
        if canonical_contig(contig) == "17":
            segments = [(0, locus_start, bin_size, "genome"), (locus_start, locus_end, locus_bin_size, "locus"),
                        (locus_end, length, bin_size, "genome")]
        else:
            segments = [(0, length, bin_size, "genome")]
        for start, end, width, kind in segments:
            starts, ends = _tile(start, end, width)
            pieces.append((np.full(len(starts), contig, dtype=object), starts, ends, np.full(len(starts), kind, dtype=object)))
    return tuple(np.concatenate(columns) for columns in zip(*pieces))


def target_layout(targets_chrom: np.ndarray, targets_start: np.ndarray, targets_end: np.ndarray,
                  contig_lengths: dict[str, int], off_target_size: int | None = None,
                  off_target_margin: int = 1000, source: str = "targets"):
    """One bin per merged target, plus off-target bins of about ``off_target_size`` between targets.

    Target contig names are matched to the reference's spelling (chr17 or 17);
    off-target bins keep ``off_target_margin`` bp away from targets, where
    capture tails would inflate them. ``source`` (the BED file) names the targets in errors.
    """
    if off_target_size is not None and off_target_size < 1000:
        raise InputError(f"--off-target-size {off_target_size} is too small (use >= 1000 bp, as --bin-size)")
    by_canonical = {canonical_contig(c): c for c in contig_lengths}
    contig_order = {c: i for i, c in enumerate(contig_lengths)}
    rows = []
    for c, s, e in zip(targets_chrom.tolist(), targets_start.tolist(), targets_end.tolist()):
        contig = by_canonical.get(canonical_contig(c))
        if contig is None:
            raise InputError(f"{source}: contig {c} is not in the reference")
        if e > contig_lengths[contig]:
            raise InputError(f"{source}: {c}:{s}-{e} runs past the end of {contig} ({contig_lengths[contig]:,} bp)")
        rows.append((contig_order[contig], s, e, contig))
    rows.sort()
    merged: list[list] = []
    for order, s, e, contig in rows:
        if merged and merged[-1][0] == order and s <= merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], e)
        else:
            merged.append([order, s, e, contig])
    chrom, start, end, kind = [], [], [], []

    def add(contig, s, e, k):
        chrom.append(contig), start.append(s), end.append(e), kind.append(k)

    for i, (order, s, e, contig) in enumerate(merged):
        if off_target_size:
            previous_end = merged[i - 1][2] if i and merged[i - 1][0] == order else 0
            gap_start, gap_end = previous_end + off_target_margin, s - off_target_margin
            n = (gap_end - gap_start) // off_target_size
            if n >= 1:
                edges = np.linspace(gap_start, gap_end, n + 1).round().astype(np.int64)
                for a, b in zip(edges[:-1], edges[1:]):
                    add(contig, int(a), int(b), "offtarget")
        add(contig, s, e, "target")
    return (np.array(chrom, dtype=object), np.array(start, dtype=np.int64),
            np.array(end, dtype=np.int64), np.array(kind, dtype=object))


def annotate_genes(chrom: np.ndarray, start: np.ndarray, end: np.ndarray, assembly: Assembly) -> np.ndarray:
    """Comma-joined names of the amplicon genes each bin overlaps ('' for none)."""
    labels = np.full(len(chrom), "", dtype=object)
    on_17 = np.array([canonical_contig(c) == "17" for c in chrom.tolist()], dtype=bool)
    for name, gene_start, gene_end in zip(assembly.gene_names, assembly.gene_starts, assembly.gene_ends):
        hits = np.flatnonzero(on_17 & (start < gene_end) & (end > gene_start))
        for i in hits:
            labels[i] = f"{labels[i]},{name}" if labels[i] else name
    return labels


def make_bins(chrom, start, end, kind, gc, n_fraction, assembly: Assembly, fasta_lengths: dict[str, int]) -> Bins:
    """Assemble the final ``Bins`` with gene labels; ``gc``/``n_fraction`` and the lengths of the contigs
    with bins come from the FASTA."""
    chrom = np.asarray(chrom).astype(str)
    try:
        return Bins(chrom=chrom, start=start, end=end, kind=np.asarray(kind).astype(str),
                    gene=annotate_genes(chrom, start, end, assembly).astype(str),
                    gc=gc, n_fraction=n_fraction, assembly=assembly.name,
                    contig_lengths={contig: fasta_lengths[contig] for contig in dict.fromkeys(chrom.tolist())})
    except ValueError as error:
        raise InputError(str(error)) from None
