"""Supporting functions for the 'count' command: fragments per bin from a BAM or CRAM.

This module is the only importer of the compiled loop (``her2cnv._counts``).
It checks everything the loop assumes (matching contigs and lengths, bins sorted
per contig, a reference for CRAM), plans how the file is read, and turns htslib's
status codes into errors that name the file; the loop itself only fills arrays.

How the file is read depends on ``threads`` (``--threads``):

- ``threads=0``: one pass from start to end in the calling thread. No index is
  needed; records must be coordinate-sorted, which the loop verifies as it goes.
- ``threads=N`` and an index (.bai/.csi/.crai): ``N + 1`` reading threads (at most
  one per available core: on the benchmark's 2 cores a third reader was 2-4%
  slower than two, and one reader is the plain pass), each
  with its own open file and index and no decompression pool, so each inflates
  and decodes its own share. The genome is cut into parts by region (about
  ``PARTS_PER_READER`` parts per thread, of about equal record counts by the
  index's per-contig counts; for CRAM, whose index keeps no counts, by the
  compressed bytes per contig that its .crai lists, else by contig length)
  that the threads take from a shared queue, the largest first, plus one part
  for the unplaced reads. Every contig is covered to its end (records past a
  contig's stated length included); a record belongs to the part whose region
  holds its start, and each thread adds into arrays of its own, which are summed
  at the end: integer sums, so the result is the one pass's, to the count. The
  records read are checked against the total of a BAM's index, or of a CRAM's
  container headers (a .crai keeps no counts), which catches a stale or damaged
  index: the file is then read again from start to end.
- ``threads=N`` and no index (or SAM): one reading thread and N BGZF decompression
  threads in htslib's pool, as before there were region readers.

Why readers over regions: on the benchmark (README, "Benchmark"; 2 cores, zlib
pysam) htslib's decompression pool gave no speed-up with one added thread and
1.6x with two: its reading thread is busy decoding and dispatching blocks, so a
pool of two is about one inflater. Readers over regions each inflate their own
blocks (there, about 1.8x with one added thread); the cost is a seek and a
partly re-read block per part (for CRAM, a slice decoded twice and a reference
contig loaded per reader).
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import io as io_module
import logging
import os
import queue
import struct
import threading
import zlib
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
CHUNK_RECORDS = 1 << 18  # records per call into the loop: progress and Ctrl-C are handled between calls
PARTS_PER_READER = 4  # region parts per reading thread: a thread that draws quick parts takes more
PROGRESS_SECONDS = 0.1  # how often the waiting main thread reports progress and notices Ctrl-C


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
        problem = "is a directory, expected a BAM/CRAM/SAM file" if path.is_dir() else "no such file"
        raise InputError(f"{path}: {problem}")
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
        os.environ["REF_PATH"] = os.devnull  # never let htslib fetch a reference over the network (even if a
        os.environ.pop("REF_CACHE", None)    # user's REF_PATH names one): the FASTA given is the only source
    if threads < 0:
        raise InputError(f"--threads must be >= 0, got {threads}")
    if not is_cram:
        _check_bam_index(path)
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


def _check_bam_index(path: Path) -> bool:
    """Refuse the index htslib would load for ``path`` if its structure is broken, before pysam opens the file
    and with it the index: on some truncated .bai and .csi files htslib frees memory twice or reads past its
    buffer and kills the process (exit 134 or 139), which no error handling can catch; others, and files that
    are no index at all, it skips and reads the BAM as if no index were there (a stray x.bam.csi hiding a sound
    x.bam.bai). Returns whether the index ends with the optional count of unplaced reads (True if no index)."""
    # htslib's search order for a BAM's index: the .csi names first, then the .bai ones
    candidates = [Path(f"{path}.csi"), path.with_suffix(".csi"), Path(f"{path}.bai"), path.with_suffix(".bai")]
    index = next((candidate for candidate in candidates if candidate.is_file()), None)
    if index is None:
        return True
    status = index.stat()
    return _checked_index(index, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _checked_index(index: Path, size: int, modified_ns: int) -> bool:
    """``_check_bam_index`` for one index file, once per version of it (size and time of change): each reading
    thread opens the BAM, and a 30x genome's .bai takes 0.2 s to walk."""
    data = index.read_bytes()
    try:
        if data[:2] == b"\x1f\x8b":  # a .csi is BGZF-compressed
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as error:
                raise ValueError(f"cannot be decompressed: {error}") from None
        end = _index_end(data)
        if len(data) not in (end, end + 8):  # the optional count of unplaced reads: 8 bytes
            raise ValueError("it ends inside its data: truncated" if len(data) < end + 8 else
                             f"{len(data) - end - 8:,} bytes after its end")
    except ValueError as problem:
        raise InputError(f"{index}: a damaged BAM index ({problem}); rebuild it with 'samtools index' or remove it") \
            from None
    return len(data) == end + 8


def _index_end(data: bytes) -> int:
    """Where the per-reference data of a BAI or CSI end (SAM spec 5.2, 5.3: a header, then per reference its bins
    with their chunks, and a BAI's linear index); a ValueError says what is wrong with its layout."""
    is_csi = data[:4] == b"CSI\x01"
    if not is_csi and data[:4] != b"BAI\x01":
        raise ValueError("empty" if not data else "it starts as neither a BAI nor a CSI does: not an index")
    try:
        if is_csi:
            depth, aux_length = struct.unpack_from("<ii", data, 8)
            offset = 16 + max(aux_length, 0)
        else:
            depth, aux_length, offset = 5, 0, 4
        if not 0 <= depth <= 9:  # htslib counts bins in an int: deeper schemes overflow it (and it loops)
            raise ValueError(f"a binning depth of {depth} (htslib handles 0-9)")
        # bins of the scheme: 0 to n - 1, and n + 1, the pseudo-bin of per-reference counts (spec 5.2/5.3);
        # htslib loops for ever on some bin numbers beyond them (a fuzzed .csi)
        scheme_bins = ((1 << (3 * (depth + 1))) - 1) // 7
        (n_references,) = struct.unpack_from("<i", data, offset)
        offset += 4
        if min(aux_length, n_references) < 0:
            raise ValueError("a negative count")
        for _ in range(n_references):
            (n_bins,) = struct.unpack_from("<i", data, offset)
            offset += 4
            seen = set()
            for _ in range(max(n_bins, 0)):
                (bin_number,) = struct.unpack_from("<I", data, offset)
                if bin_number >= scheme_bins and bin_number != scheme_bins + 1:
                    raise ValueError(f"bin {bin_number:,} is not a bin of its scheme")
                if bin_number in seen:  # htslib then ignores the whole index, saying nothing
                    raise ValueError(f"bin {bin_number:,} twice in one reference")
                seen.add(bin_number)
                offset += 12 if is_csi else 4  # the bin (and a CSI's loffset)
                (n_chunks,) = struct.unpack_from("<i", data, offset)
                offset += 4 + 16 * n_chunks
                if n_chunks < 0:
                    raise ValueError("a negative chunk count")
                if bin_number == scheme_bins + 1 and n_chunks != 2:  # htslib reads its second chunk unchecked
                    raise ValueError(f"its pseudo-bin has {n_chunks} chunks, not 2")
            n_intervals = 0
            if not is_csi:
                (n_intervals,) = struct.unpack_from("<i", data, offset)
                offset += 4 + 8 * n_intervals
            if min(n_bins, n_intervals) < 0:
                raise ValueError("a negative count")
    except struct.error:
        raise ValueError("it ends inside its data: truncated") from None
    return offset


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
        if bins.contig_lengths is not None and bins.contig_lengths[contig] != lengths[tid]:
            raise InputError(f"{path}: contig {references[tid]} is {lengths[tid]:,} bp but "
                             f"{bins.contig_lengths[contig]:,} in the FASTA the bins were made from "
                             "(aligned to another reference?)")
        bin_tid[rows] = tid
    order = np.lexsort((bins.start, bin_tid))
    contig_first_bin = np.searchsorted(bin_tid[order], np.arange(len(references) + 1)).astype(np.int64)
    return order, contig_first_bin


def count_bam(path, bins: Bins, filters: CountFilters = CountFilters(), *, reference=None, threads: int = 0,
              sample: str | None = None, progress: Callable[[float], None] | None = None,
              assembly_lengths: dict[str, int] | None = None) -> FragmentCounts:
    """Count fragments of ``path`` into ``bins``; see ``cext/_counts.pyx`` for the rules.

    ``threads`` adds reading threads over regions when the file is indexed, decompression
    threads otherwise (module docstring); the result is the same for every value.
    ``assembly_lengths`` (the bins' assembly contig lengths) lets the BAM be refused
    when its chr17 length shows another assembly.
    """
    extension = _extension()
    if threads < 0:
        raise InputError(f"--threads must be >= 0, got {threads}")
    with reading_alignments(path, reference) as alignments:
        references, lengths = alignments.references, alignments.lengths
        if assembly_lengths is not None:
            _check_chr17(references, lengths, assembly_lengths, bins.assembly, path)
        name = sample_name(alignments.header.to_dict(), sample, path)
        order, contig_first_bin = bin_order_for_contigs(bins, references, lengths, path)
        starts = np.ascontiguousarray(bins.start[order])
        ends = np.ascontiguousarray(bins.end[order])

        def new_totals() -> _Totals:
            return _Totals(extension, filters, contig_first_bin, starts, ends)

        readers = min(threads + 1, available_cores())  # more readers than cores only contend
        if threads == 0 or readers < 2:
            totals = _count_sequentially(extension, alignments, new_totals(), path, reference, progress)
        elif alignments.has_index() and (alignments.is_bam or alignments.is_cram):
            totals = _count_regions(extension, alignments, new_totals, readers, path, reference, progress)
        else:
            log.info("%s: %s: reading with %d BGZF decompression thread(s); --threads is more effective with an "
                     "indexed BAM/CRAM (it adds readers over regions)", path,
                     "SAM" if alignments.has_index() else "no index (.bai/.csi/.crai)", threads)
            with reading_alignments(path, reference, threads) as pooled:
                totals = _count_sequentially(extension, pooled, new_totals(), path, reference, progress)
    if totals.outcomes[0] == 0:
        raise InputError(f"{path}: contains no alignment records")
    unsorted_back = np.empty(len(bins), dtype=np.int64)
    unsorted_back[order] = np.arange(len(bins))
    provenance = {
        "tool": "her2cnv", "version": __version__, "command": "count",
        # not the threads: the counts are the same for any number (tests), and so must be the bytes
        "filters": asdict(filters),
        "input": file_fingerprint(path), "reference": file_fingerprint(reference) if reference else None,
        "bins_checksum": bins.checksum,
    }
    return FragmentCounts(
        sample=name, bins=bins,
        count=totals.counts[unsorted_back], short_count=totals.short_counts[unsorted_back],
        outcomes=dict(zip(COUNT_OUTCOMES, totals.outcomes.tolist())),
        fragment_length_histogram=totals.histogram, metadata=provenance,
    )


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which batch schedulers set)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class _Totals:
    """One reading thread's arrays (bins in the loop's order) and the compiled Tally that adds to them."""

    def __init__(self, extension, filters: CountFilters, contig_first_bin, starts, ends):
        self.counts = np.zeros(len(starts), dtype=np.int64)
        self.short_counts = np.zeros(len(starts), dtype=np.int64)
        self.outcomes = np.zeros(len(COUNT_OUTCOMES), dtype=np.int64)
        self.histogram = np.zeros(HISTOGRAM_LENGTH, dtype=np.int64)
        self.tally = extension.Tally(filters, contig_first_bin, starts, ends,
                                     self.counts, self.short_counts, self.outcomes, self.histogram)

    def add(self, other: _Totals) -> None:
        self.counts += other.counts
        self.short_counts += other.short_counts
        self.outcomes += other.outcomes
        self.histogram += other.histogram


def _unsorted_error(path, references, reader) -> InputError:
    contig = references[reader.disorder_tid] if reader.disorder_tid >= 0 else "unplaced reads"
    return InputError(f"{path}: not coordinate-sorted (a record at {contig}:{reader.disorder_pos + 1} comes after "
                      "a later position); sort it with 'samtools sort'")


def _count_sequentially(extension, alignments, totals: _Totals, path, reference, progress) -> _Totals:
    """One pass over ``alignments`` from start to end, in chunks of CHUNK_RECORDS records."""
    size = Path(path).stat().st_size
    reader = extension.Reader(alignments)
    while True:
        status = reader.read(totals.tally, CHUNK_RECORDS)
        if status == 0:
            return totals
        if status == extension.UNSORTED:
            raise _unsorted_error(path, alignments.references, reader)
        if status < 0:
            raise read_error(alignments, path, reference,
                             f"after {int(totals.outcomes[0]):,} records (htslib status {status})")
        if progress is not None and size:
            progress(_fraction_read(alignments, size))


Region = tuple[int, int, int]  # (tid, begin, end): the records of contig tid that start in [begin, end)


def plan_parts(weights, lengths, n_parts: int, no_coordinate: int, end_of_contig: int) -> list[list[Region]]:
    """Cut the contigs into about ``n_parts`` parts of about equal weight (records, or bases), largest first.

    A contig of at least half a part's share is cut into ranges of equal length, one part each, the
    last reaching to ``end_of_contig`` (past the stated length); lighter contigs are grouped, in file
    order, into parts of about a share. Every contig is in some part, even one of no weight; the first
    part holds the unplaced reads (contig ``no_coordinate``), which no region can split.
    """
    share = max(1.0, sum(weights) / max(1, n_parts))
    parts: list[tuple[float, list[Region]]] = []
    group: list[Region] = []
    group_weight = 0.0
    for tid, (weight, length) in enumerate(zip(weights, lengths)):
        if weight < share / 2 or length < 2:
            group.append((tid, 0, end_of_contig))
            group_weight += weight
            if group_weight >= share:
                parts.append((group_weight, group))
                group, group_weight = [], 0.0
            continue
        pieces = min(max(1, round(weight / share)), length)
        cuts = [length * i // pieces for i in range(pieces)] + [end_of_contig]
        parts += [(weight / pieces, [(tid, begin, end)]) for begin, end in zip(cuts[:-1], cuts[1:])]
    if group:
        parts.append((group_weight, group))
    parts.sort(key=lambda part: -part[0])  # stable: equal parts stay in file order
    return [[(no_coordinate, 0, 0)]] + [regions for _, regions in parts]


def _count_without_index(extension, new_totals, n_readers: int, path, reference, progress, problem: str) -> _Totals:
    """Count again from start to end after reading by region failed because of the index."""
    log.warning("%s: %s (an index older than the file, or of another file?); counting again from start to end "
                "(rebuild the index with 'samtools index')", path, problem)
    with reading_alignments(path, reference, n_readers - 1) as pooled:
        return _count_sequentially(extension, pooled, new_totals(), path, reference, progress)


def _count_regions(extension, alignments, new_totals, n_readers: int, path, reference, progress) -> _Totals:
    """Read ``alignments`` (an indexed BAM/CRAM) in parts by region with ``n_readers`` threads, each with
    its own open file, index and arrays; the arrays are summed at the end."""
    references, lengths = alignments.references, alignments.lengths
    indexed = np.zeros(len(references), dtype=np.int64)
    unplaced = extension.index_records(alignments, indexed)  # -1: the index keeps no counts (CRAM's)
    if unplaced >= 0:
        expected, counted_by = int(indexed.sum()) + unplaced, "its index counts"
        weights = indexed.tolist()
    else:  # a .crai has no counts, and a slice it misplaces or loses is simply not read: the containers say
        expected, counted_by = _cram_records(path) or 0, "its containers hold"
        weights = _crai_weights(path, len(references))
    parts = plan_parts(weights if weights and sum(weights) else list(lengths), lengths,
                       PARTS_PER_READER * n_readers, extension.NO_COORDINATE, extension.END_OF_CONTIG)
    with contextlib.ExitStack() as files:
        readers = [extension.Reader(alignments)]
        for _ in range(n_readers - 1):
            readers.append(extension.Reader(files.enter_context(reading_alignments(path, reference))))
        for reader in readers:
            files.callback(reader.close)  # the iterators go before their files
        tallies = [new_totals() for _ in readers]
        failure = _read_parts(readers, tallies, parts, progress, expected)
        if failure is None and unplaced >= 0 and not _check_bam_index(Path(path)):
            # the index omits the optional count of unplaced reads (htslib reads it as 0): count them again
            unplaced_records = new_totals()
            failure = _read_parts(readers[:1], [unplaced_records], parts[:1], None, 0)
            expected += int(unplaced_records.outcomes[0])
    if failure is not None:
        reader, (tid, begin, end), status = failure
        where = "unplaced reads" if tid < 0 else f"{references[tid]}:{begin + 1}-" + (
            str(end) if end < extension.END_OF_CONTIG else "end")
        if status == extension.UNSORTED:
            raise _unsorted_error(path, references, reader)
        # An index of another file, or of this one before it was rewritten, sends region reads to offsets that
        # are not block starts: blame neither file yet, read it from start to end, which needs no index and
        # reports the file's own damage if it has any.
        problem = "cannot be queried" if status is None else f"led to a read error (htslib status {status})"
        return _count_without_index(extension, new_totals, n_readers, path, reference, progress,
                                    f"its index {problem} in {where}")
    totals = tallies[0]
    for other in tallies[1:]:
        totals.add(other)
    if expected and int(totals.outcomes[0]) != expected:
        return _count_without_index(extension, new_totals, n_readers, path, reference, progress,
                                    f"{counted_by} {expected:,} records but {int(totals.outcomes[0]):,} were "
                                    "read through its index")
    return totals


def _crai_weights(path, n_contigs: int) -> list[int] | None:
    """Compressed bytes per contig by the .crai beside a CRAM (gzipped lines: contig, start, span, container
    offset, slice offset, slice size), to weigh the parts; None if there is none or it cannot be read."""
    for crai in (Path(f"{path}.crai"), Path(path).with_suffix(".crai")):
        if crai.is_file():
            break
    else:
        return None
    weights = [0] * n_contigs
    try:
        with gzip.open(crai, "rt") as handle:
            for line in handle:
                fields = line.split("\t")
                if 0 <= int(fields[0]) < n_contigs:
                    weights[int(fields[0])] += int(fields[5])
    except (OSError, EOFError, ValueError, IndexError) as error:  # the index itself is htslib's to judge
        log.debug("%s: cannot weigh the parts by %s (%s); using contig lengths", path, crai, error)
        return None
    return weights


def _cram_records(path) -> int | None:
    """The records a CRAM holds, summed over its container headers (CRAM spec 2.1 and 3.x, section 7: a length,
    then ITF8/LTF8 integers, the fourth the container's records): one seek and read per container of ~10,000
    records. None for another major version or a structure that cannot be walked, which reading reports."""
    with open(path, "rb") as handle:
        definition = handle.read(26)  # 'CRAM', major, minor, a 20-byte file id
        if definition[:4] != b"CRAM" or definition[4] not in (2, 3):
            return None
        crc_bytes = 4 if definition[4] == 3 else 0
        size, offset, records = os.fstat(handle.fileno()).st_size, 26, 0
        while offset < size:
            handle.seek(offset)
            header = handle.read(1024)
            try:
                (length,), position = struct.unpack_from("<i", header), 4
                fields = []
                for decode in (_itf8, _itf8, _itf8, _itf8, _ltf8, _ltf8, _itf8, _itf8):  # ... blocks, landmarks
                    value, position = decode(header, position)
                    fields.append(value)
                landmarks = fields[-1]
                for _ in range(landmarks):
                    if position + 5 > len(header):  # a long list of landmarks (slices): read on
                        handle.seek(offset)
                        header = handle.read(position + 5 * landmarks + 1024)
                    _, position = _itf8(header, position)
            except (struct.error, IndexError):
                return None
            if length < 0 or fields[3] < 0 or landmarks < 0:
                return None
            records += fields[3]
            offset += position + crc_bytes + length
    return records if offset == size else None


def _itf8(data: bytes, position: int) -> tuple[int, int]:
    """A CRAM ITF8 integer at ``position``, and the position after it: up to 3 following bytes it is an LTF8;
    with 4 (first byte 1111xxxx) the last gives only its low 4 bits. Signed 32-bit."""
    if data[position] < 0xF0:
        value, end = _ltf8(data, position)
    else:
        if len(data) < position + 5:
            raise IndexError("an ITF8 integer cut short")
        value, end = (int.from_bytes(data[position:position + 4], "big") & 0x0FFFFFFF) << 4 \
            | data[position + 4] & 0x0F, position + 5
    return value - (1 << 32) if value >= 1 << 31 else value, end


def _ltf8(data: bytes, position: int) -> tuple[int, int]:
    """A CRAM LTF8 integer: like ITF8 but of up to 8 following bytes, every bit used."""
    first = data[position]
    extra = 8 - (first ^ 0xFF).bit_length()
    if len(data) < position + 1 + extra:
        raise IndexError("an LTF8 integer cut short")
    value = first & (0xFF >> (extra + 1)) if extra < 8 else 0
    for byte in data[position + 1:position + 1 + extra]:
        value = value << 8 | byte
    return value, position + 1 + extra


def _read_parts(readers, tallies: list[_Totals], parts: list[list[Region]], progress, expected: int):
    """Run one thread per reader over the shared queue of parts. Returns None, or the first failure as
    (reader, region, htslib status or UNSORTED, or None when the index could not be queried).

    The calling thread waits, reporting progress; on Ctrl-C (or any exception, from it or a reading
    thread) it tells the threads to stop, which they do between chunks, and waits for them.
    """
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for part in parts:
        pending.put(part)
    stop = threading.Event()
    failures: list = []
    done = [0]

    def work(reader, totals: _Totals) -> None:
        try:
            while not stop.is_set():
                try:
                    part = pending.get_nowait()
                except queue.Empty:
                    return
                for region in part:
                    if reader.query(*region) < 0:
                        failures.append((reader, region, None))
                        stop.set()
                        return
                    while (status := reader.read(totals.tally, CHUNK_RECORDS)) > 0:
                        if stop.is_set():
                            return
                    if status < 0:
                        failures.append((reader, region, status))
                        stop.set()
                        return
                done[0] += 1
        except BaseException as error:  # a bug: re-raised in the calling thread, traceback and all
            failures.append(error)
            stop.set()

    threads = [threading.Thread(target=work, args=(reader, totals), name=f"her2cnv-count-{i}", daemon=True)
               for i, (reader, totals) in enumerate(zip(readers, tallies))]
    try:
        for thread in threads:
            thread.start()
        if progress is not None:
            progress(0.0)
        for thread in threads:
            while thread.is_alive():
                thread.join(PROGRESS_SECONDS)
                if progress is not None and thread.is_alive():
                    seen = sum(int(totals.outcomes[0]) for totals in tallies)
                    progress(min(1.0, seen / expected) if expected else done[0] / len(parts))
    except BaseException:
        stop.set()
        for thread in threads:
            while thread.ident is not None and thread.is_alive():  # their files are closed once they are done
                try:
                    thread.join()
                except KeyboardInterrupt:  # a second Ctrl-C: they stop within a chunk anyway
                    pass
        raise
    for failure in failures:
        if isinstance(failure, BaseException):
            raise failure
    return failures[0] if failures else None


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
