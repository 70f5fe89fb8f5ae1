"""Supporting functions for the 'count' command: fragments per bin from a BAM or CRAM.

This module is the only importer of the compiled loop (``her2cnv._counts``).
It checks everything the loop assumes (matching contigs and lengths, bins sorted
per contig, a reference for CRAM) and turns htslib's status codes into errors
that name the file; the loop itself only fills arrays.

The file is read once from start to end (no index needed); records must be
coordinate-sorted, which the loop verifies as it goes.
"""
from __future__ import annotations

import contextlib
import io as io_module
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .bins import canonical_contig
from .errors import Her2CnvError, InputError
from .io import file_fingerprint
from .types import COUNT_OUTCOMES, Bins, FragmentCounts, check_safe_name
from .version import __version__

log = logging.getLogger(__name__)
DEFAULT_EXCLUDE_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800  # unmapped, secondary, QC-fail, duplicate, supplementary
HISTOGRAM_LENGTH = 1001  # fragment lengths 0-999 bp, and >= 1000 bp in the last slot
NO_MAXIMUM = (1 << 62) - 1
CHUNK_RECORDS = 1 << 20  # records per call into the loop: progress and Ctrl-C are handled between calls


@dataclass(frozen=True)
class CountFilters:
    """Which records count. The short window feeds the separate ``short_count`` channel."""

    min_mapq: int = 20
    exclude_flags: int = DEFAULT_EXCLUDE_FLAGS
    min_length: int = 0
    max_length: int = NO_MAXIMUM
    short_min: int = 90  # Mouliere 2018: 90-150 bp enriches tumour-derived cfDNA
    short_max: int = 150

    @property
    def length_window(self) -> bool:
        """True when fragments are restricted by length (single-end reads then cannot be counted)."""
        return self.min_length > 0 or self.max_length < NO_MAXIMUM

    def __post_init__(self):
        if not 0 <= self.min_mapq <= 255:
            raise InputError(f"--min-mapq must be 0-255, got {self.min_mapq}")
        if not 0 <= self.exclude_flags <= 0xFFFF:
            raise InputError(f"--exclude-flags must be 0-65535, got {self.exclude_flags}")
        for low, high, name in ((self.min_length, self.max_length, "--fragment-length"),
                                (self.short_min, self.short_max, "--short-length")):
            if low < 0 or high < low:
                raise InputError(f"{name} must be MIN-MAX with 0 <= MIN <= MAX, got {low}-{high}")


def parse_length_window(text: str, option: str) -> tuple[int, int]:
    """'90-150' -> (90, 150); '100-' -> (100, no maximum)."""
    low, dash, high = text.partition("-")
    try:
        if not dash:
            raise ValueError
        return int(low), int(high) if high else NO_MAXIMUM
    except ValueError:
        raise InputError(f"{option} must look like 90-150 (or 100- for no maximum), got {text!r}") from None


def _extension():
    """Import the compiled loop, refusing a build made against another pysam release.

    pysam comes first: the loop links to pysam's htslib by file name (see setup.py), which
    resolves to the copy pysam has loaded.
    """
    import pysam

    try:
        from . import _counts
    except (ImportError, ValueError) as error:
        raise Her2CnvError(f"the compiled counter cannot be loaded ({error}); reinstall her2cnv "
                           f"with 'pip install --force-reinstall .' against pysam {pysam.__version__}") from None
    if _counts.BUILT_AGAINST_PYSAM != pysam.__version__:
        raise Her2CnvError(f"her2cnv's counter was built against pysam {_counts.BUILT_AGAINST_PYSAM} but pysam "
                           f"{pysam.__version__} is installed; reinstall her2cnv")
    return _counts


def open_alignments(path, reference=None, threads: int = 0):
    """Open a BAM/CRAM/SAM with pysam, with one-line errors for the usual ways this fails."""
    import pysam

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if not magic:
        raise InputError(f"{path}: file is empty")
    is_cram = magic == b"CRAM"
    if is_cram:
        if reference is None:
            raise InputError(f"{path}: is a CRAM file; give the reference FASTA it was made with (--reference)")
        if not Path(reference).is_file():
            raise InputError(f"{reference}: no such reference FASTA")
        os.environ.setdefault("REF_PATH", os.devnull)  # never let htslib fetch a reference over the network
    if threads < 0:
        raise InputError(f"--threads must be >= 0, got {threads}")
    try:
        with _close_errors_logged(path):
            # pysam's threads=N means N - 1 decompression workers beside the reading thread
            alignments = pysam.AlignmentFile(str(path), "rc" if is_cram else "r", threads=threads + 1,
                                             reference_filename=str(reference) if is_cram else None,
                                             require_index=False, check_sq=True)
    except (OSError, ValueError, NotImplementedError) as error:  # the last: gzip but not BGZF (a corrupt BAM)
        raise InputError(f"{path}: cannot read as BAM/CRAM/SAM ({str(error).strip() or type(error).__name__})") from None
    try:  # pysam parses the header text lazily, and refuses malformed lines with these
        alignments.header.to_dict()
        alignments.references
    except (ValueError, AssertionError) as error:  # ValueError includes UnicodeDecodeError
        alignments.close()
        raise InputError(f"{path}: malformed header ({str(error).strip() or type(error).__name__}); "
                         "see it with 'samtools view -H'") from None
    if alignments.nreferences == 0:
        alignments.close()
        raise InputError(f"{path}: header has no @SQ lines (unaligned reads?)")
    return alignments


@contextlib.contextmanager
def _close_errors_logged(path):
    """Log, instead of printing, what pysam writes to ``sys.stderr`` when an AlignmentFile fails to open.

    When the constructor fails (say, on a corrupt header), pysam closes the file again
    in ``__dealloc__``, where htslib's failure to close can only be printed, as
    "OSError: Closing failed" and an "Exception ignored in ... __dealloc__" traceback;
    the constructor's own error is the one reported.
    """
    with contextlib.redirect_stderr(io_module.StringIO()) as printed:
        try:
            yield
        finally:
            if printed.getvalue():
                log.debug("%s: while opening: %s", path, printed.getvalue().strip())


def read_error(alignments, path, reference, detail: str) -> InputError:
    """The error for a record that htslib cannot decode; for CRAM the usual cause is another reference."""
    cause = "the file is truncated or corrupt"
    if alignments.is_cram:
        cause += f", or {reference} is not the reference it was encoded with (htslib checks the MD5 of each slice)"
    return InputError(f"{path}: read error {detail}: {cause}")


@contextlib.contextmanager
def reading_alignments(path, reference=None, threads: int = 0):
    """``open_alignments`` as a context: a record pysam cannot decode (``OSError`` while iterating) becomes
    an ``InputError`` naming the file, and closing a file that failed mid-read cannot mask that error."""
    alignments = open_alignments(path, reference, threads)
    try:
        yield alignments
    except OSError as error:
        raise read_error(alignments, path, reference, f"({str(error).strip() or type(error).__name__})") from None
    finally:
        try:
            alignments.close()
        except OSError as error:  # htslib reports the failed read again on close; nothing is lost when reading
            log.debug("%s: closing after a read error: %s", path, error)


def sample_name(header: dict, override: str | None, path) -> str:
    """The sample: ``override``, else the single @RG SM, else the file name without extension."""
    if override is not None:
        try:
            return check_safe_name(override)
        except ValueError as error:
            raise InputError(f"--sample: {error}") from None
    names = sorted({rg["SM"] for rg in header.get("RG", []) if rg.get("SM")})
    if len(names) > 1:
        raise InputError(f"{path}: read groups name {len(names)} samples ({', '.join(names[:4])}); "
                         "name one with --sample")
    try:
        return check_safe_name(names[0] if names else Path(path).name.split(".")[0])
    except ValueError as error:
        raise InputError(f"{path}: {error} (from the @RG SM tag or the file name); set one with --sample") from None


def bin_order_for_contigs(bins: Bins, references: tuple[str, ...], lengths: tuple[int, ...], path):
    """Map bin contigs onto BAM contigs (chr-prefix tolerant) and order bins by BAM contig.

    Returns (order, contig_first_bin): ``bins`` indexed by ``order`` are sorted by
    (BAM tid, start), and the bins of tid ``t`` are ``contig_first_bin[t]:contig_first_bin[t+1]``.
    """
    tid_of = {canonical_contig(name): tid for tid, name in enumerate(references)}
    bin_tid = np.empty(len(bins), dtype=np.int64)
    for contig in bins.contigs:
        tid = tid_of.get(canonical_contig(contig))
        rows = bins.chrom == contig
        if tid is None:
            raise InputError(f"{path}: contig {contig} of the bins is not in the BAM header "
                             "(aligned to another reference?)")
        if int(bins.end[rows].max()) > lengths[tid]:
            raise InputError(f"{path}: contig {references[tid]} is {lengths[tid]:,} bp but the bins reach "
                             f"{int(bins.end[rows].max()):,} ({bins.assembly} bins on a different assembly?)")
        bin_tid[rows] = tid
    order = np.lexsort((bins.start, bin_tid))
    contig_first_bin = np.searchsorted(bin_tid[order], np.arange(len(references) + 1)).astype(np.int64)
    return order, contig_first_bin


def count_bam(path, bins: Bins, filters: CountFilters = CountFilters(), *, reference=None, threads: int = 0,
              sample: str | None = None, progress: Callable[[float], None] | None = None,
              assembly_lengths: dict[str, int] | None = None) -> FragmentCounts:
    """Count fragments of ``path`` into ``bins``; see ``cext/_counts.pyx`` for the rules.

    ``assembly_lengths`` (the bins' assembly contig lengths) lets the BAM be refused
    when its chr17 length shows another assembly.
    """
    extension = _extension()
    size = Path(path).stat().st_size if Path(path).is_file() else 0
    with reading_alignments(path, reference, threads) as alignments:
        references, lengths = alignments.references, alignments.lengths
        if assembly_lengths is not None:
            _check_chr17(references, lengths, assembly_lengths, bins.assembly, path)
        name = sample_name(alignments.header.to_dict(), sample, path)
        order, contig_first_bin = bin_order_for_contigs(bins, references, lengths, path)
        starts = np.ascontiguousarray(bins.start[order])
        ends = np.ascontiguousarray(bins.end[order])
        counts = np.zeros(len(bins), dtype=np.int64)
        short_counts = np.zeros(len(bins), dtype=np.int64)
        outcomes = np.zeros(len(COUNT_OUTCOMES), dtype=np.int64)
        histogram = np.zeros(HISTOGRAM_LENGTH, dtype=np.int64)
        cursor = np.zeros(4, dtype=np.int64)
        while True:
            status = extension.count_fragments(
                alignments, contig_first_bin, starts, ends, filters.min_mapq, filters.exclude_flags, filters.length_window,
                filters.min_length, filters.max_length, filters.short_min, filters.short_max,
                counts, short_counts, outcomes, histogram, cursor, CHUNK_RECORDS)
            if status == 0:
                break
            if status == extension.UNSORTED:
                contig = references[cursor[2]] if cursor[2] >= 0 else "unplaced reads"
                raise InputError(f"{path}: not coordinate-sorted (a record at {contig}:{cursor[3] + 1} comes after "
                                 "a later position); sort it with 'samtools sort'")
            if status < 0:
                raise read_error(alignments, path, reference,
                                 f"after {int(outcomes[0]):,} records (htslib status {status})")
            if progress is not None and size:
                progress(_fraction_read(alignments, size))
    if outcomes[0] == 0:
        raise InputError(f"{path}: contains no alignment records")
    unsorted_back = np.empty(len(bins), dtype=np.int64)
    unsorted_back[order] = np.arange(len(bins))
    provenance = {
        "tool": "her2cnv", "version": __version__, "command": "count",
        "filters": asdict(filters), "threads": threads,
        "input": file_fingerprint(path), "reference": file_fingerprint(reference) if reference else None,
        "bins_checksum": bins.checksum,
    }
    return FragmentCounts(
        sample=name, bins=bins,
        count=counts[unsorted_back], short_count=short_counts[unsorted_back],
        outcomes=dict(zip(COUNT_OUTCOMES, outcomes.tolist())),
        fragment_length_histogram=histogram, metadata=provenance,
    )


def _check_chr17(references, lengths, assembly_lengths: dict[str, int], assembly: str, path) -> None:
    for name, length in zip(references, lengths):
        if canonical_contig(name) == "17" and length != assembly_lengths["chr17"]:
            raise InputError(f"{path}: {name} is {length:,} bp but the bins are {assembly} "
                             f"(chr17 {assembly_lengths['chr17']:,} bp): aligned to another assembly")


def _fraction_read(alignments, size: int) -> float:
    try:
        return min(1.0, (alignments.tell() >> 16) / size)
    except (OSError, ValueError, NotImplementedError):
        return 0.0
