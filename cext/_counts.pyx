# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The fragment-counting loop: raw bam1_t records into per-bin arrays, no Python object per record.

Only ``her2cnv.counts`` imports this module; it checks every precondition
(bins sorted per contig, contig mapping, array sizes), plans the regions and
the threads, and turns the status codes returned here into errors. This file
raises nothing aimed at users and logs nothing.

A ``Tally`` holds what one reading thread adds to: the filters, the bins and
its own output arrays. A ``Reader`` reads one open file into a Tally, either
from start to end (``sam_read1``) or one index region at a time
(``sam_itr_queryi``/``sam_itr_next``), each call up to a chunk of records with
the GIL released.
"""
cimport cython
from libc.stdint cimport INT64_MIN, int64_t, uint16_t, uint64_t
from pysam.libcalignmentfile cimport AlignmentFile
from pysam.libchtslib cimport (HTS_FMT_CRAI, HTS_IDX_NOCOOR, HTS_POS_MAX, bam1_t, bam_hdr_t, hts_idx_fmt,
                               hts_idx_get_n_no_coor, hts_idx_get_stat, hts_idx_nseq, hts_idx_t, hts_itr_destroy,
                               hts_itr_t, htsFile, sam_itr_next, sam_itr_queryi, sam_read1)

cdef extern from *:
    """
    #ifndef HER2CNV_PYSAM_VERSION
    #define HER2CNV_PYSAM_VERSION "unknown"
    #endif
    """
    const char *HER2CNV_PYSAM_VERSION

BUILT_AGAINST_PYSAM = HER2CNV_PYSAM_VERSION.decode()

# Slots of the ``outcomes`` array, in the order of her2cnv.types.COUNT_OUTCOMES.
cdef enum:  # outcome slots
    SEEN, UNMAPPED, SECONDARY, SUPPLEMENTARY, QC_FAIL, DUPLICATE, OTHER_FLAG, LOW_MAPQ,
    IMPROPER_PAIR, MATE, OUTSIDE_LENGTH, OUTSIDE_BINS, COUNTED, DUP_PRIMARY, MAPPED_PRIMARY

cdef enum:  # Reader.read's return value when a record precedes the one before it
    STATUS_UNSORTED = -1000
UNSORTED = STATUS_UNSORTED
NO_COORDINATE = HTS_IDX_NOCOOR  # the "contig" of Reader.query for unplaced reads (no RNAME)
END_OF_CONTIG = HTS_POS_MAX     # a region end past any record of a contig, even beyond its stated length

cdef uint16_t F_PAIRED = 0x1, F_PROPER = 0x2, F_UNMAPPED = 0x4
cdef uint16_t F_SECONDARY = 0x100, F_QCFAIL = 0x200, F_DUP = 0x400, F_SUPPLEMENTARY = 0x800


cdef inline int64_t find_bin(const int64_t[::1] starts, const int64_t[::1] ends,
                             int64_t lo, int64_t hi, int64_t position) noexcept nogil:
    """Index of the bin in [lo, hi) that contains position, or -1 (bins sorted, disjoint)."""
    cdef int64_t mid, first = lo
    while lo < hi:  # first bin whose start is > position
        mid = (lo + hi) >> 1
        if starts[mid] <= position:
            lo = mid + 1
        else:
            hi = mid
    if lo > first and position < ends[lo - 1]:
        return lo - 1
    return -1


@cython.final
cdef class Tally:
    """The filters and bins one reading thread counts with, and the arrays it adds to.

    ``filters`` is a ``her2cnv.counts.CountFilters``. ``contig_first_bin`` has
    n_tids + 1 entries: the bins of BAM contig ``tid`` are
    ``[contig_first_bin[tid], contig_first_bin[tid + 1])`` of the bin arrays,
    sorted by start. ``counts`` and ``short_counts`` are per bin (in that order),
    ``outcomes`` per slot of COUNT_OUTCOMES, ``length_histogram`` per fragment
    length (the last slot holds the longer ones); all are added to, never reset.
    """
    cdef int min_mapq, exclude_flags
    cdef bint length_window
    cdef int64_t min_length, max_length, short_min, short_max
    cdef const int64_t[::1] contig_first_bin, bin_starts, bin_ends
    cdef int64_t[::1] counts, short_counts, outcomes, length_histogram
    cdef int64_t last_bin  # the bin the previous fragment fell in: sorted input lands there many times running

    def __init__(self, filters, const int64_t[::1] contig_first_bin, const int64_t[::1] bin_starts,
                 const int64_t[::1] bin_ends, int64_t[::1] counts, int64_t[::1] short_counts,
                 int64_t[::1] outcomes, int64_t[::1] length_histogram):
        self.min_mapq, self.exclude_flags = filters.min_mapq, filters.exclude_flags
        self.length_window = filters.length_window
        self.min_length, self.max_length = filters.min_length, filters.max_length
        self.short_min, self.short_max = filters.short_min, filters.short_max
        self.contig_first_bin, self.bin_starts, self.bin_ends = contig_first_bin, bin_starts, bin_ends
        self.counts, self.short_counts = counts, short_counts
        self.outcomes, self.length_histogram = outcomes, length_histogram
        self.last_bin = -1

    cdef inline void add(self, const bam1_t *b) noexcept nogil:
        """Tally one record. A pair is counted once, from the mate with positive template length,
        at the fragment midpoint ``pos + tlen // 2``; a single-end read at its leftmost aligned base.
        Single-end reads have no fragment length, so they are left out when ``length_window`` is set."""
        cdef int64_t tid = b.core.tid, pos = b.core.pos, length, where, index
        cdef int64_t n_hist = self.length_histogram.shape[0], n_contigs = self.contig_first_bin.shape[0] - 1
        cdef uint16_t flag = b.core.flag, excluded = b.core.flag & self.exclude_flags
        self.outcomes[SEEN] += 1
        if not flag & (F_UNMAPPED | F_SECONDARY | F_SUPPLEMENTARY):
            self.outcomes[MAPPED_PRIMARY] += 1
            if flag & F_DUP:
                self.outcomes[DUP_PRIMARY] += 1
        if excluded:
            if excluded & F_UNMAPPED:
                self.outcomes[UNMAPPED] += 1
            elif excluded & F_SECONDARY:
                self.outcomes[SECONDARY] += 1
            elif excluded & F_SUPPLEMENTARY:
                self.outcomes[SUPPLEMENTARY] += 1
            elif excluded & F_QCFAIL:
                self.outcomes[QC_FAIL] += 1
            elif excluded & F_DUP:
                self.outcomes[DUPLICATE] += 1
            else:
                self.outcomes[OTHER_FLAG] += 1
            return
        if tid < 0 or flag & F_UNMAPPED:  # unmapped, yet not excluded by the flags given
            self.outcomes[UNMAPPED] += 1
            return
        if b.core.qual < self.min_mapq:
            self.outcomes[LOW_MAPQ] += 1
            return

        if flag & F_PAIRED:
            if not flag & F_PROPER or b.core.isize == 0:
                self.outcomes[IMPROPER_PAIR] += 1
                return
            if b.core.isize < 0:
                self.outcomes[MATE] += 1
                return
            length = b.core.isize
            self.length_histogram[length if length < n_hist else n_hist - 1] += 1
            if length < self.min_length or length > self.max_length:
                self.outcomes[OUTSIDE_LENGTH] += 1
                return
            where = pos + (length >> 1)
        else:
            if self.length_window:
                self.outcomes[OUTSIDE_LENGTH] += 1
                return
            length = -1
            where = pos

        if tid >= n_contigs:
            self.outcomes[OUTSIDE_BINS] += 1
            return
        index = self.last_bin
        if not (self.contig_first_bin[tid] <= index < self.contig_first_bin[tid + 1]
                and self.bin_starts[index] <= where < self.bin_ends[index]):
            index = find_bin(self.bin_starts, self.bin_ends, self.contig_first_bin[tid],
                             self.contig_first_bin[tid + 1], where)
            if index >= 0:
                self.last_bin = index
        if index < 0:
            self.outcomes[OUTSIDE_BINS] += 1
            return
        self.outcomes[COUNTED] += 1
        self.counts[index] += 1
        if self.short_min <= length <= self.short_max:
            self.short_counts[index] += 1


@cython.final
cdef class Reader:
    """Reads one open file into Tallies: from where the file stands to its end, or, after ``query``,
    the records of one index region that start in it.

    Use one Reader, and its AlignmentFile, from one thread at a time. The file needs no thread
    pool of its own for region reading (each reading thread inflates its own blocks).
    """
    cdef AlignmentFile bam
    cdef hts_itr_t *iterator  # NULL: read sequentially with sam_read1
    cdef int64_t region_begin  # records starting before it were returned for overlapping the region: skipped
    cdef int64_t last_tid, last_pos  # the sort check (unplaced reads, tid -1, sort last)
    cdef readonly int64_t disorder_tid, disorder_pos  # where the sort check failed

    def __cinit__(self, AlignmentFile bam):
        self.bam = bam
        self.iterator = NULL
        self.region_begin = INT64_MIN
        self.last_tid = 0
        self.last_pos = 0

    def __dealloc__(self):
        self.free_iterator()

    cdef void free_iterator(self) noexcept:
        if self.iterator != NULL:
            hts_itr_destroy(self.iterator)
            self.iterator = NULL

    def close(self):
        """Free the region iterator (before the file is closed)."""
        self.free_iterator()

    def query(self, int tid, int64_t begin, int64_t end):
        """Read the records of contig ``tid`` that start in [begin, end) from now on (``tid`` NO_COORDINATE:
        the unplaced reads). Records that start before ``begin`` and reach into the region are skipped:
        they belong to the region holding their start. Returns 0, or -1 if the index cannot be queried."""
        cdef hts_idx_t *index = self.bam.index
        if index == NULL:
            return -1
        self.free_iterator()
        with nogil:
            self.iterator = sam_itr_queryi(index, tid, begin, end)
        self.region_begin = begin if tid >= 0 else INT64_MIN
        self.last_tid = 0
        self.last_pos = 0
        return 0 if self.iterator != NULL else -1

    def read(self, Tally tally, int64_t max_records):
        """Read up to ``max_records`` records into ``tally``, with the GIL released.

        Returns the number of records read (0 at the end of the file or region), a negative htslib
        status for a read error, or UNSORTED (the offending position in ``disorder_tid``/``disorder_pos``).
        """
        cdef int64_t status
        if self.bam.htsfile == NULL:
            raise ValueError("Reader.read: the file is closed")
        with nogil:
            status = self.read_chunk(tally, max_records)
        return status

    cdef int64_t read_chunk(self, Tally tally, int64_t max_records) noexcept nogil:
        # htslib is called directly: pysam's AlignmentFile.cnext() releases and retakes the GIL for every
        # record, which costs ~5% of a single-threaded count.
        cdef htsFile *hts = self.bam.htsfile
        cdef bam_hdr_t *header = self.bam.header.ptr
        cdef bam1_t *b = self.bam.b
        cdef hts_itr_t *iterator = self.iterator
        cdef int ret
        cdef int64_t n_read = 0, tid, pos, n_contigs = tally.contig_first_bin.shape[0] - 1
        cdef int64_t region_begin = self.region_begin, last_tid = self.last_tid, last_pos = self.last_pos

        while n_read < max_records:
            if iterator != NULL:
                ret = sam_itr_next(hts, iterator, b)
                if ret >= 0 and b.core.pos < region_begin:
                    continue
            else:
                ret = sam_read1(hts, header, b)
            if ret < 0:
                n_read = 0 if ret == -1 else ret
                break
            n_read += 1
            # coordinate order: contigs ascending, unplaced (tid -1) last
            tid = b.core.tid
            pos = b.core.pos
            if tid < 0:
                tid = n_contigs
            if tid < last_tid or (tid == last_tid and pos < last_pos):
                self.disorder_tid = b.core.tid
                self.disorder_pos = pos
                n_read = STATUS_UNSORTED
                break
            last_tid = tid
            last_pos = pos
            tally.add(b)
        self.last_tid = last_tid
        self.last_pos = last_pos
        return n_read


def index_records(AlignmentFile bam, int64_t[::1] records):
    """Add the records per contig that ``bam``'s index counted (mapped + unmapped) to ``records[tid]``.

    Returns the number of unplaced records it counted, or -1 if the index keeps no such counts (CRAM's
    .crai) or there is no index; ``records`` is then left as it was.
    """
    cdef hts_idx_t *index = bam.index
    cdef uint64_t mapped, unmapped
    cdef int tid, n
    if index == NULL or hts_idx_fmt(index) == HTS_FMT_CRAI:
        return -1
    n = min(hts_idx_nseq(index), <int> records.shape[0])
    for tid in range(n):
        mapped = unmapped = 0
        if hts_idx_get_stat(index, tid, &mapped, &unmapped) == 0:
            records[tid] += <int64_t> (mapped + unmapped)
    return <int64_t> hts_idx_get_n_no_coor(index)
