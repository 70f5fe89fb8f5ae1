# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The fragment-counting loop: one pass over raw bam1_t records, no Python object per record.

Only ``her2cnv.counts`` imports this module; it checks every precondition
(bins sorted per contig, contig mapping, array sizes) before calling in. This
file raises nothing aimed at users and logs nothing.
"""
from libc.stdint cimport int64_t, uint16_t
from pysam.libcalignmentfile cimport AlignmentFile
from pysam.libchtslib cimport bam1_t, bam_hdr_t, htsFile, sam_read1

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

# Slots of the ``cursor`` array: where the previous call stopped, for the sort check.
cdef enum:  # cursor slots
    LAST_TID, LAST_POS, DISORDER_TID, DISORDER_POS

cdef enum:  # count_fragments' return value when a record precedes the one before it
    STATUS_UNSORTED = -1000
UNSORTED = STATUS_UNSORTED

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


def count_fragments(AlignmentFile bam,
                    const int64_t[::1] contig_first_bin,
                    const int64_t[::1] bin_starts,
                    const int64_t[::1] bin_ends,
                    int min_mapq, int exclude_flags, bint length_window,
                    int64_t min_length, int64_t max_length,
                    int64_t short_min, int64_t short_max,
                    int64_t[::1] counts, int64_t[::1] short_counts,
                    int64_t[::1] outcomes, int64_t[::1] length_histogram,
                    int64_t[::1] cursor, int64_t max_records):
    """Read up to ``max_records`` records from ``bam`` and add them to the arrays.

    ``contig_first_bin`` has n_tids + 1 entries: the bins of BAM contig ``tid``
    are ``[contig_first_bin[tid], contig_first_bin[tid + 1])`` of the bin arrays,
    sorted by start. A pair is counted once, from the mate with positive
    template length, at the fragment midpoint ``pos + tlen // 2``; a single-end
    read at its leftmost aligned base. Single-end reads have no fragment length,
    so they are left out when ``length_window`` is set.

    Returns the number of records read (0 at end of file), a negative htslib
    status for a read error, or UNSORTED (the offending position in ``cursor``).
    The GIL is released for the whole chunk.
    """
    cdef htsFile *hts = bam.htsfile
    cdef bam_hdr_t *header = bam.header.ptr
    cdef bam1_t *b = bam.b
    cdef int64_t status
    with nogil:
        status = count_chunk(hts, header, b, contig_first_bin, bin_starts, bin_ends,
                             min_mapq, exclude_flags, length_window, min_length, max_length, short_min, short_max,
                             counts, short_counts, outcomes, length_histogram, cursor, max_records)
    return status


cdef int64_t count_chunk(htsFile *hts, bam_hdr_t *header, bam1_t *b,
                         const int64_t[::1] contig_first_bin,
                         const int64_t[::1] bin_starts,
                         const int64_t[::1] bin_ends,
                         int min_mapq, int exclude_flags, bint length_window,
                         int64_t min_length, int64_t max_length,
                         int64_t short_min, int64_t short_max,
                         int64_t[::1] counts, int64_t[::1] short_counts,
                         int64_t[::1] outcomes, int64_t[::1] length_histogram,
                         int64_t[::1] cursor, int64_t max_records) noexcept nogil:
    """count_fragments' loop. It calls htslib's sam_read1 itself: pysam's ``AlignmentFile.cnext()``
    releases and retakes the GIL for every record, which costs ~5% of a single-threaded count."""
    cdef int ret
    cdef int64_t n_read = 0, tid, pos, length, where, index, n_hist = length_histogram.shape[0]
    cdef int64_t n_contigs = contig_first_bin.shape[0] - 1
    cdef uint16_t flag
    cdef int64_t last_tid = cursor[LAST_TID], last_pos = cursor[LAST_POS]

    while n_read < max_records:
        ret = sam_read1(hts, header, b)
        if ret < 0:
            cursor[LAST_TID] = last_tid
            cursor[LAST_POS] = last_pos
            return 0 if ret == -1 else ret
        n_read += 1
        tid = b.core.tid
        pos = b.core.pos
        flag = b.core.flag
        outcomes[SEEN] += 1

        # coordinate order: contigs ascending, unplaced (tid -1) last
        if tid < 0:
            tid = n_contigs
        if tid < last_tid or (tid == last_tid and pos < last_pos):
            cursor[DISORDER_TID] = b.core.tid
            cursor[DISORDER_POS] = pos
            return STATUS_UNSORTED
        last_tid = tid
        last_pos = pos
        tid = b.core.tid

        if not flag & (F_UNMAPPED | F_SECONDARY | F_SUPPLEMENTARY):
            outcomes[MAPPED_PRIMARY] += 1
            if flag & F_DUP:
                outcomes[DUP_PRIMARY] += 1
        if flag & exclude_flags:
            if flag & exclude_flags & F_UNMAPPED:
                outcomes[UNMAPPED] += 1
            elif flag & exclude_flags & F_SECONDARY:
                outcomes[SECONDARY] += 1
            elif flag & exclude_flags & F_SUPPLEMENTARY:
                outcomes[SUPPLEMENTARY] += 1
            elif flag & exclude_flags & F_QCFAIL:
                outcomes[QC_FAIL] += 1
            elif flag & exclude_flags & F_DUP:
                outcomes[DUPLICATE] += 1
            else:
                outcomes[OTHER_FLAG] += 1
            continue
        if tid < 0 or flag & F_UNMAPPED:  # unmapped, yet not excluded by the flags given
            outcomes[UNMAPPED] += 1
            continue
        if b.core.qual < min_mapq:
            outcomes[LOW_MAPQ] += 1
            continue

        if flag & F_PAIRED:
            if not flag & F_PROPER or b.core.isize == 0:
                outcomes[IMPROPER_PAIR] += 1
                continue
            if b.core.isize < 0:
                outcomes[MATE] += 1
                continue
            length = b.core.isize
            length_histogram[length if length < n_hist else n_hist - 1] += 1
            if length < min_length or length > max_length:
                outcomes[OUTSIDE_LENGTH] += 1
                continue
            where = pos + (length >> 1)
        else:
            if length_window:
                outcomes[OUTSIDE_LENGTH] += 1
                continue
            length = -1
            where = pos

        if tid >= n_contigs:
            outcomes[OUTSIDE_BINS] += 1
            continue
        index = find_bin(bin_starts, bin_ends, contig_first_bin[tid], contig_first_bin[tid + 1], where)
        if index < 0:
            outcomes[OUTSIDE_BINS] += 1
            continue
        outcomes[COUNTED] += 1
        counts[index] += 1
        if short_min <= length <= short_max:
            short_counts[index] += 1

    cursor[LAST_TID] = last_tid
    cursor[LAST_POS] = last_pos
    return n_read
