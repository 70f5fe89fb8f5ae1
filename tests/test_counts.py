"""The compiled counter against hand-checked expectations and an independent slow pysam path.

BAMs are built at test time from SAM text: ``tests/data/edge_cases.sam`` (each
record a named case) and a seeded random SAM that mixes every flag, MAPQ and
fragment length the filters look at. Each comparison runs the one pass
(``threads=0``) and the readers over regions (``threads`` 1 and 3, the files
indexed), with parts made small so that many reads straddle part boundaries.
The last tests hold ``count``'s start-up to what it needs: no pandas, whose
tables io.table_chunks and io.read_columns write and read.
"""
import gzip
import logging
import re
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest

import her2cnv.counts
from her2cnv import io
from her2cnv.bins import canonical_contig
from her2cnv.cli import main
from her2cnv.counts import NO_MAXIMUM, CountFilters, count_bam, plan_parts
from her2cnv.errors import InputError
from her2cnv.types import COUNT_OUTCOMES, Bins

DATA = Path(__file__).parent / "data"
CONTIGS = {"chr1": 12000, "chr2": 11000, "chr3": 5000, "chr4": 8000}
THREADS = [0, 1, 3]  # the one pass; readers over regions (2 and 4 of them)
# Records that span many parts (each must be counted once, by the part holding its start), and records
# past a contig's stated length (chr1 12,000 bp, chr2 11,000 bp), counted outside the bins.
REGION_EDGES = [
    ("spans_chr1", 0, "chr1", 1, 60, "11000M", "*", 0, 0),
    ("spans_chr2_mapq5", 0, "chr2", 11, 5, "10000M", "*", 0, 0),
    ("beyond_single", 0, "chr1", 12101, 60, "50M", "*", 0, 0),
    ("beyond_pair", 99, "chr2", 11201, 60, "50M", "=", 11301, 150),
    ("beyond_pair", 147, "chr2", 11301, 60, "50M", "=", 11201, -150),
    ("beyond_unmapped", 69, "chr2", 11401, 0, "*", "=", 11401, 0),
]


@pytest.fixture(autouse=True)
def small_parts(monkeypatch, caplog, request):
    """Many small parts (64 per reading thread): a few hundred bases each, so reads cross their boundaries;
    and readers as asked for, whatever the cores of the machine running the tests.

    The readers over regions must stand on their own: a BAM's record total is checked against its index,
    and a mismatch means a second, sequential pass, which would hide a wrong result; only the test of that
    checks may see one.
    """
    monkeypatch.setattr(her2cnv.counts, "PARTS_PER_READER", 64)
    monkeypatch.setattr(her2cnv.counts, "available_cores", lambda: 8)  # as many readers as asked for, anywhere
    yield
    if request.node.name not in ("test_an_index_that_counts_other_records_means_a_second_pass",
                                 "test_an_index_of_another_file_means_a_second_pass_not_a_corrupt_file",
                                 "test_corrupt_indexed_bam_is_refused_with_threads",
                                 "test_a_crai_that_loses_a_slice_means_a_second_pass"):
        assert not [r for r in caplog.get_records("call") if "counting again from start to end" in r.getMessage()]


def assert_same_result(result, expected):
    """Counts, short counts, every outcome and the fragment-length histogram all equal."""
    np.testing.assert_array_equal(result.count, expected.count)
    np.testing.assert_array_equal(result.short_count, expected.short_count)
    assert result.outcomes == expected.outcomes
    np.testing.assert_array_equal(result.fragment_length_histogram, expected.fragment_length_histogram)


def make_bins(prefix="chr"):
    """chr1: 1 kb bins over [0, 10000) but none over [5000, 6000); chr2: 1 kb bins over [0, 10000);
    chr4: two bins and no reads; chr3 is not binned."""
    rows = [("1", s, s + 1000) for s in range(0, 10000, 1000) if s != 5000]
    rows += [("2", s, s + 1000) for s in range(0, 10000, 1000)]
    rows += [("4", 0, 4000), ("4", 4000, 8000)]
    n = len(rows)
    return Bins(chrom=np.array([prefix + c for c, _, _ in rows]), start=np.array([s for _, s, _ in rows]),
                end=np.array([e for _, _, e in rows]), kind=np.full(n, "genome"), gene=np.full(n, ""),
                gc=np.full(n, 0.5), n_fraction=np.zeros(n), assembly="GRCh38",
                contig_lengths={prefix + c.removeprefix("chr"): length for c, length in CONTIGS.items() if c != "chr3"})


def sam_to_bam(sam: Path, bam: Path) -> Path:
    pysam.sort("-o", str(bam), "--no-PG", str(sam))
    pysam.index(str(bam))
    return bam


@pytest.fixture(scope="module")
def edge_bam(tmp_path_factory):
    return sam_to_bam(DATA / "edge_cases.sam", tmp_path_factory.mktemp("edge") / "edge.bam")


def write_random_sam(path: Path, seed: int, n_fragments: int = 6000) -> Path:
    """Pairs, single reads and unmapped records with random flags, MAPQ and lengths."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_fragments):
        contig = str(rng.choice(["chr1", "chr2", "chr3", "chr4"], p=[0.45, 0.35, 0.1, 0.1]))
        length = int(rng.choice([int(rng.integers(30, 400)), 89, 90, 150, 151, 1200]))
        start = int(rng.integers(0, CONTIGS[contig] - max(length, 60)))
        extra = int(rng.choice([0, 0, 0, 0x400, 0x200, 0x100, 0x800]))
        mapq = int(rng.choice([0, 19, 20, 21, 60, 60]))
        kind = rng.choice(["pair", "pair", "pair", "single", "improper"])
        read_length = min(50, length)
        if kind == "pair":
            mate = start + length - read_length
            lines.append((f"f{i}", 0x1 | 0x2 | 0x20 | 0x40 | extra, contig, start + 1, mapq, f"{read_length}M", "=", mate + 1, length))
            lines.append((f"f{i}", 0x1 | 0x2 | 0x10 | 0x80 | extra, contig, mate + 1, int(rng.choice([mapq, 60])), f"{read_length}M", "=", start + 1, -length))
        elif kind == "single":
            lines.append((f"f{i}", int(rng.choice([0, 0x10])) | extra, contig, start + 1, mapq, "50M", "*", 0, 0))
        else:
            lines.append((f"f{i}", 0x1 | 0x40 | extra, contig, start + 1, mapq, "50M", "=", start + 301, 350))
    lines += [(f"u{i}", 0x4, "*", 0, 0, "*", "*", 0, 0) for i in range(20)]
    with open(path, "w") as handle:
        handle.write("@HD\tVN:1.6\tSO:unsorted\n")
        for contig, length in CONTIGS.items():
            handle.write(f"@SQ\tSN:{contig}\tLN:{length}\n")
        handle.write("@RG\tID:r\tSM:RANDOM\n")
        for row in lines:
            handle.write("\t".join(map(str, row)) + "\t*\t*\n")
    return path


@pytest.fixture(scope="module")
def random_bam(tmp_path_factory):
    directory = tmp_path_factory.mktemp("random")
    return sam_to_bam(write_random_sam(directory / "random.sam", seed=7), directory / "random.bam")


def slow_count(path, bins: Bins, filters: CountFilters):
    """An independent counter: pysam AlignedSegment objects and a linear scan over the bins."""
    counts = np.zeros(len(bins), dtype=np.int64)
    short = np.zeros(len(bins), dtype=np.int64)
    histogram = np.zeros(1001, dtype=np.int64)
    window = filters.min_length > 0 or filters.max_length < NO_MAXIMUM
    by_contig = {}
    for i, contig in enumerate(bins.chrom):
        by_contig.setdefault(canonical_contig(str(contig)), []).append(i)
    with pysam.AlignmentFile(str(path)) as alignments:
        for read in alignments.fetch(until_eof=True):
            if read.flag & filters.exclude_flags or read.is_unmapped:
                continue
            if read.mapping_quality < filters.min_mapq:
                continue
            if read.is_paired:
                if not read.is_proper_pair or read.template_length <= 0:
                    continue
                length = read.template_length
                histogram[min(length, 1000)] += 1
                if not filters.min_length <= length <= filters.max_length:
                    continue
                position = read.reference_start + length // 2
            else:
                if window:
                    continue
                length, position = None, read.reference_start
            for i in by_contig.get(canonical_contig(read.reference_name), []):
                if bins.start[i] <= position < bins.end[i]:
                    counts[i] += 1
                    if length is not None and filters.short_min <= length <= filters.short_max:
                        short[i] += 1
    return counts, short, histogram


@pytest.mark.parametrize("threads", THREADS)
def test_edge_cases_land_in_the_expected_bins(edge_bam, threads):
    result = count_bam(edge_bam, make_bins(), threads=threads)
    bins = make_bins()
    got = {bins.describe(i): int(c) for i, c in enumerate(result.count) if c}
    assert got == {
        "chr1:0-1000": 1,     # p_mid_bin0
        "chr1:1000-2000": 2,  # p_mates_split (mates in bins 0 and 1, midpoint 1000), p_mid_edge_left (1999)
        "chr1:2000-3000": 4,  # the four length-edge pairs (89, 90, 150, 151)
        "chr1:3000-4000": 1,  # p_mapq20; p_mapq19, p_dup and p_qcfail are excluded
        "chr1:6000-7000": 1,  # p_long (1500 bp), midpoint 6750
        "chr2:2000-3000": 2,  # single_fwd at 2000, single_rev leftmost base 2998
        "chr2:4000-5000": 1,  # p_chr2
    }
    assert result.short_count.sum() == 2  # the 90 and 150 bp pairs; single reads have no length
    assert result.outcomes == {
        "records_seen": 41, "unmapped": 3, "secondary": 1, "supplementary": 1, "qc_fail": 2, "duplicate": 2,
        "other_excluded_flag": 0, "low_mapq": 2, "improper_pair": 2, "mate_of_counted_fragment": 13,
        "outside_fragment_length": 0, "outside_bins": 3, "fragments_counted": 12,
        "duplicate_flagged_primary": 2, "mapped_primary": 36,
    }
    assert sum(result.outcomes[k] for k in COUNT_OUTCOMES[1:13]) == result.outcomes["records_seen"]
    assert result.fragment_length_histogram[1000] == 1
    assert result.fragment_length_mode == 167
    assert result.sample == "EDGE1"
    assert result.duplicate_fraction == pytest.approx(2 / 36)
    assert result.count[make_bins().chrom == "chr4"].sum() == 0  # an empty contig gives zero counts


def test_fragment_length_window_edges_are_inclusive(edge_bam):
    result = count_bam(edge_bam, make_bins(), CountFilters(min_length=90, max_length=150))
    assert result.count[2] == 2  # chr1:2000-3000 keeps 90 and 150, drops 89 and 151
    assert result.outcomes["outside_fragment_length"] == 11 + 2  # 11 of the 13 countable pairs, 2 single reads


def test_mapq_boundary(edge_bam):
    assert count_bam(edge_bam, make_bins(), CountFilters(min_mapq=20)).count[3] == 1
    assert count_bam(edge_bam, make_bins(), CountFilters(min_mapq=0)).count[3] == 2


@pytest.mark.parametrize("filters", [
    CountFilters(),
    CountFilters(min_mapq=0, exclude_flags=0),
    CountFilters(min_length=90, max_length=150),
    CountFilters(min_mapq=21, exclude_flags=0x904, short_min=100, short_max=200),
    CountFilters(min_length=151, max_length=NO_MAXIMUM),
], ids=["defaults", "no-filters", "window-90-150", "keep-dups-mapq21", "window-151-"])
@pytest.mark.parametrize("threads", THREADS)
def test_matches_the_slow_path(random_bam, filters, threads):
    bins = make_bins()
    result = count_bam(random_bam, bins, filters, threads=threads)
    counts, short, histogram = slow_count(random_bam, bins, filters)
    assert result.count.sum() > 200  # the comparison is not vacuous
    np.testing.assert_array_equal(result.count, counts)
    np.testing.assert_array_equal(result.short_count, short)
    np.testing.assert_array_equal(result.fragment_length_histogram, histogram)
    if threads:
        assert_same_result(result, count_bam(random_bam, bins, filters))


def test_total_agrees_with_samtools_view(random_bam):
    """samtools counts the records that start a fragment under the same filters; each lands in a bin or outside."""
    result = count_bam(random_bam, make_bins())
    expression = "(tlen > 0 && flag.proper_pair) || !flag.paired"
    samtools = int(pysam.view("-c", "-q", "20", "-F", "0xF04", "-e", expression, str(random_bam)).strip())
    assert result.outcomes["fragments_counted"] + result.outcomes["outside_bins"] == samtools
    chr3 = int(pysam.view("-c", "-q", "20", "-F", "0xF04", "-e", expression, str(random_bam), "chr3").strip())
    assert result.outcomes["outside_bins"] >= chr3 > 0


def test_chr_prefix_differences_are_tolerated(random_bam):
    with_prefix = count_bam(random_bam, make_bins("chr"))
    without_prefix = count_bam(random_bam, make_bins(""))
    np.testing.assert_array_equal(with_prefix.count, without_prefix.count)


@pytest.fixture(scope="module")
def region_edges(tmp_path_factory):
    """edge_cases.sam plus REGION_EDGES, as a BAM indexed with a .bai, the same BAM with a .csi and without
    an index, and an indexed CRAM (.crai) with its reference. Between them: reads straddling part boundaries, unplaced unmapped
    reads, placed unmapped mates, reads on a contig the bins lack (chr3), an empty binned contig (chr4),
    and records past a contig's stated length."""
    directory = tmp_path_factory.mktemp("region_edges")
    text = (DATA / "edge_cases.sam").read_text()
    sam = directory / "edges.sam"
    sam.write_text(text + "".join("\t".join(map(str, row)) + "\t*\t*\n" for row in REGION_EDGES))
    bam = sam_to_bam(sam, directory / "edges.bam")
    unindexed = directory / "unindexed.bam"
    shutil.copy(bam, unindexed)
    csi = directory / "csi.bam"
    shutil.copy(bam, csi)
    pysam.index("-c", str(csi))
    reference = write_reference(directory / "ref.fa")
    cram = directory / "edges.cram"
    pysam.view("-C", "-T", str(reference), "-o", str(cram), str(bam), catch_stdout=False)
    pysam.index(str(cram))
    return {"bam": bam, "csi": csi, "unindexed": unindexed, "cram": cram, "reference": reference}


def write_reference(path: Path) -> Path:
    rng = np.random.default_rng(3)
    with open(path, "w") as handle:
        for contig, length in CONTIGS.items():
            handle.write(f">{contig}\n{''.join(rng.choice(list('ACGT'), length))}\n")
    pysam.faidx(str(path))
    return path


@pytest.mark.parametrize("kind", ["bam", "csi", "unindexed", "cram"])
@pytest.mark.parametrize("filters", [CountFilters(), CountFilters(min_mapq=0, exclude_flags=0)],
                         ids=["defaults", "no-filters"])
def test_threads_give_the_one_pass_result(region_edges, kind, filters, monkeypatch):
    path, reference = region_edges[kind], region_edges["reference"] if kind == "cram" else None
    regions = []  # whether the readers over regions ran
    original = her2cnv.counts._count_regions
    monkeypatch.setattr(her2cnv.counts, "_count_regions", lambda *a, **k: regions.append(1) or original(*a, **k))
    one_pass = count_bam(path, make_bins(), filters, reference=reference)
    assert one_pass.outcomes["records_seen"] == 41 + len(REGION_EDGES) and not regions
    if filters.exclude_flags == 0:  # the records past the contigs' ends reach the bins' test
        assert one_pass.outcomes["outside_bins"] == 3 + 2  # edge_cases.sam's 3, beyond_single and beyond_pair
    for threads in THREADS[1:]:
        assert_same_result(count_bam(path, make_bins(), filters, reference=reference, threads=threads), one_pass)
    assert len(regions) == (0 if kind == "unindexed" else len(THREADS) - 1)


def test_without_an_index_threads_decompress_and_say_so(region_edges, caplog):
    with caplog.at_level(logging.INFO, logger="her2cnv.counts"):
        count_bam(region_edges["unindexed"], make_bins(), threads=2)
    assert "no index (.bai/.csi/.crai): reading with 2 BGZF decompression thread(s)" in caplog.text


def test_count_tables_are_byte_identical_for_any_number_of_threads(region_edges, tmp_path):
    """The thread count is not recorded: a cohort counted on a laptop and on a cluster gives the same bytes."""
    bins = tmp_path / "bins.tsv"
    io.write_bins(bins, make_bins(), {})
    tables = []
    for threads in THREADS:
        output = tmp_path / f"threads{threads}.tsv"
        assert main(["count", str(region_edges["bam"]), "--bins", str(bins), "-o", str(output),
                     "--threads", str(threads), "--quiet"]) == 0
        tables.append(output.read_bytes())
    assert tables[0] == tables[1] == tables[2]


def test_parts_cover_every_contig_to_its_end():
    end, unplaced = 1 << 62, -2
    weights, lengths = [1000, 0, 10, 3000, 5, 0], [10_000, 500, 300, 20_000, 1, 7]
    parts = plan_parts(weights, lengths, 8, unplaced, end)
    assert parts[0] == [(unplaced, 0, 0)]
    regions = sorted(region for part in parts[1:] for region in part)
    for tid, length in enumerate(lengths):  # each contig tiled from 0 to the end, without gaps or overlaps
        ranges = [(begin, stop) for t, begin, stop in regions if t == tid]
        assert ranges[0][0] == 0 and ranges[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert len([r for r in regions if r[0] == 3]) == 6  # 3000 of 4015 records, ~500 a part
    assert [r for r in regions if r[0] == 3][1] == (3, 20_000 // 6, 20_000 * 2 // 6)  # equal lengths
    assert len(parts) - 1 == 6 + 2 + 1  # tid 3 in six; tid 0 in two; the light ones grouped in one
    assert plan_parts([0, 0], [100, 200], 4, unplaced, end)[1:] == [[(0, 0, end), (1, 0, end)]]


def test_cram_parts_are_weighed_by_the_crai(region_edges, tmp_path):
    weights = her2cnv.counts._crai_weights(region_edges["cram"], len(CONTIGS))
    assert weights[0] > weights[2] > 0 and weights[1] > 0 and weights[3] == 0  # chr4 holds no reads
    assert her2cnv.counts._crai_weights(tmp_path / "none.cram", len(CONTIGS)) is None


@pytest.mark.parametrize("options", [["version=2.1"], ["version=3.0"], ["version=3.1"],
                                     ["seqs_per_slice=3", "slices_per_container=4"]])
def test_the_records_of_a_cram_are_summed_from_its_containers(region_edges, tmp_path, options):
    cram = tmp_path / "records.cram"
    pysam.view("-C", "-T", str(region_edges["reference"]), *[f"--output-fmt-option={o}" for o in options],
               "-o", str(cram), str(region_edges["bam"]), catch_stdout=False)
    assert her2cnv.counts._cram_records(cram) == 41 + len(REGION_EDGES)
    cram.write_bytes(cram.read_bytes()[:-100])  # cut inside the end-of-file container
    assert her2cnv.counts._cram_records(cram) is None


@pytest.mark.parametrize(("encoded", "value"), [
    ("00", 0), ("7f", 127), ("8080", 128), ("bfff", 16383), ("c04000", 16384), ("e0200000", 2 ** 21),
    ("f100000000", 2 ** 28), ("f7ffffff0f", 2 ** 31 - 1), ("ffffffff0f", -1), ("f800000000", -2 ** 31)])
def test_itf8_integers_of_every_length_are_read(encoded, value):
    """CRAM's ITF8 (spec 2.3): the container header's reference id is -1 for unplaced reads, 5 bytes long."""
    data = bytes.fromhex(encoded)
    assert her2cnv.counts._itf8(data, 0) == (value, len(data))
    with pytest.raises(IndexError):  # cut short
        her2cnv.counts._itf8(data[:-1], 0)


def test_a_crai_that_loses_a_slice_means_a_second_pass(region_edges, tmp_path, caplog):
    """A .crai keeps no counts: a slice it lost at the start of a region (one changed byte of a fuzzed .crai joined
    two lines) was simply not read, and 1% of the records went uncounted, silently. The containers' own counts
    catch it."""
    cram = tmp_path / "sliced.cram"
    pysam.view("-C", "-T", str(region_edges["reference"]), "--output-fmt-option=seqs_per_slice=5", "-o", str(cram),
               str(region_edges["bam"]), catch_stdout=False)
    pysam.index(str(cram))
    lines = gzip.decompress(Path(f"{cram}.crai").read_bytes()).decode().splitlines(keepends=True)
    assert lines[0].startswith("0\t") and lines[1].startswith("0\t")  # chr1's first two slices
    Path(f"{cram}.crai").write_bytes(gzip.compress("".join(lines[1:]).encode()))
    with caplog.at_level(logging.WARNING, logger="her2cnv.counts"):
        result = count_bam(cram, make_bins(), reference=region_edges["reference"], threads=1)
    records = 41 + len(REGION_EDGES)
    assert re.search(rf"its containers hold {records} records but \d+ were read through its index", caplog.text)
    assert "counting again from start to end" in caplog.text
    assert_same_result(result, count_bam(region_edges["cram"], make_bins(), reference=region_edges["reference"]))


def test_corrupt_indexed_bam_is_refused_with_threads(random_bam, tmp_path):
    data = bytearray(random_bam.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 200):  # mid-file: the CRC32 or the block header must catch it
        data[i] ^= 0x5A
    corrupt = tmp_path / "corrupt.bam"
    corrupt.write_bytes(bytes(data))
    shutil.copy(f"{random_bam}.bai", f"{corrupt}.bai")
    for threads in THREADS[1:]:
        # the region read fails first; the file is then read from start to end, which blames the file itself
        with pytest.raises(InputError, match=r"^.*corrupt\.bam: read error .*the file is truncated or corrupt$"):
            count_bam(corrupt, make_bins(), threads=threads)


def test_an_index_of_another_file_means_a_second_pass_not_a_corrupt_file(random_bam, tmp_path, caplog):
    """The same records recompressed (other block offsets) beside the original's .bai (audit 2026-11-22: called
    'truncated or corrupt'): region reads fail, the file is read from start to end, the counts are right."""
    recompressed = tmp_path / "recompressed.bam"
    pysam.view("-b", "--output-fmt-option", "level=1", "-o", str(recompressed), str(random_bam), catch_stdout=False)
    shutil.copy(f"{random_bam}.bai", f"{recompressed}.bai")
    with caplog.at_level(logging.WARNING, logger="her2cnv.counts"):
        result = count_bam(recompressed, make_bins(), threads=1)
    assert "its index led to a read error" in caplog.text and "counting again from start to end" in caplog.text
    assert_same_result(result, count_bam(random_bam, make_bins()))


def test_an_index_that_counts_other_records_means_a_second_pass(random_bam, monkeypatch, caplog):
    extension = her2cnv.counts._extension()
    original = extension.index_records
    monkeypatch.setattr(extension, "index_records", lambda bam, records: original(bam, records) + 1)
    with caplog.at_level(logging.WARNING, logger="her2cnv.counts"):
        result = count_bam(random_bam, make_bins(), threads=1)
    assert "its index counts 9,576 records but 9,575 were read through it" in caplog.text
    monkeypatch.undo()
    assert_same_result(result, count_bam(random_bam, make_bins()))


def test_an_index_without_the_count_of_unplaced_reads_is_not_called_stale(region_edges, tmp_path, caplog):
    """The count of unplaced reads ends an index optionally (SAM spec 5.2); htslib reads a missing one as 0, so the
    records read through the index outnumbered its count by the unplaced reads: called stale, counted twice."""
    bam = tmp_path / "no_unplaced_count.bam"
    shutil.copy(region_edges["bam"], bam)
    Path(f"{bam}.bai").write_bytes(Path(f"{region_edges['bam']}.bai").read_bytes()[:-8])
    with caplog.at_level(logging.INFO, logger="her2cnv.counts"):
        result = count_bam(bam, make_bins(), threads=1)
    assert not caplog.records
    assert_same_result(result, count_bam(region_edges["bam"], make_bins()))
    assert result.outcomes["unmapped"] > 0  # the unplaced reads were there to be missed


def test_an_interrupt_stops_the_reading_threads(random_bam, monkeypatch):
    monkeypatch.setattr(her2cnv.counts, "CHUNK_RECORDS", 50)
    calls = []

    def interrupt(fraction):
        calls.append(fraction)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        count_bam(random_bam, make_bins(), threads=3, progress=interrupt)
    assert calls == [0.0]
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("her2cnv-count-")]


def test_cram_round_trip(random_bam, tmp_path):
    reference = write_reference(tmp_path / "ref.fa")
    cram = tmp_path / "random.cram"
    pysam.view("-C", "-T", str(reference), "-o", str(cram), str(random_bam), catch_stdout=False)
    from_bam = count_bam(random_bam, make_bins())
    for threads in THREADS:  # threads 1 and 3 with the .crai: 128 and 256 parts, boundaries at many reads
        assert_same_result(count_bam(cram, make_bins(), reference=reference, threads=threads), from_bam)
        if threads == 0:
            pysam.index(str(cram))
    with pytest.raises(InputError, match="CRAM file; give the reference"):
        count_bam(cram, make_bins())


def test_sample_name_override_and_refusal(edge_bam):
    assert count_bam(edge_bam, make_bins(), sample="S-2").sample == "S-2"
    with pytest.raises(InputError, match="not safe as a file name"):
        count_bam(edge_bam, make_bins(), sample="../escape")


def test_unsorted_input_is_refused(tmp_path):
    sam = write_random_sam(tmp_path / "r.sam", seed=1, n_fragments=200)
    unsorted = tmp_path / "unsorted.bam"
    pysam.view("-b", "-o", str(unsorted), str(sam), catch_stdout=False)
    with pytest.raises(InputError, match="not coordinate-sorted"):
        count_bam(unsorted, make_bins())


def test_missing_bin_contig_is_refused(edge_bam):
    bins = make_bins()
    renamed = Bins(chrom=np.where(bins.chrom == "chr4", "chr9", bins.chrom), start=bins.start, end=bins.end,
                   kind=bins.kind, gene=bins.gene, gc=bins.gc, n_fraction=bins.n_fraction, assembly="GRCh38")
    with pytest.raises(InputError, match="contig chr9 of the bins is not in the BAM header"):
        count_bam(edge_bam, renamed)


def test_truncated_bam_is_refused(random_bam, tmp_path):
    data = random_bam.read_bytes()
    truncated = tmp_path / "truncated.bam"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        count_bam(truncated, make_bins())


def test_count_does_not_import_pandas(edge_bam, tmp_path):
    """pandas takes ~0.2 s to import, 5% of counting a 5 M-record BAM; 'count' reads and writes without it."""
    bins = tmp_path / "bins.tsv"
    io.write_bins(bins, make_bins(), {})
    script = ("import sys\nfrom her2cnv.cli import main\nstatus = main(sys.argv[1:])\n"
              "print(sorted(name for name in sys.modules if name.split('.')[0] in ('pandas', 'matplotlib')))\n"
              "sys.exit(status)")
    run = subprocess.run([sys.executable, "-c", script, "count", str(edge_bam), "--bins", str(bins),
                          "-o", str(tmp_path / "counts.tsv"), "--quiet"], capture_output=True, text=True,
                         cwd=tmp_path)  # not the repository root, whose source tree would shadow the install
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    assert io.read_counts(tmp_path / "counts.tsv").outcomes["fragments_counted"] == 12


def test_tables_are_written_as_pandas_writes_them():
    """io.table_chunks is what DataFrame.to_csv wrote before 'count' stopped importing pandas (numbers as numpy
    prints them, NaN as NA); read_columns reads it back, types and all."""
    columns = {"chrom": np.array(["chr1", "chr1", "chrX", "chr2_KI270715v1_random"]),
               "start": np.array([0, 10, 20, 30]), "gene": np.array(["", "ERBB2,GRB7", "", "x y"]),
               "gc": np.array([0.5, np.nan, 1e-7, 0.123456]), "n_fraction": np.array([-0.0, 1.0, 2.5e16, 1 / 3])}
    text = "".join(io.table_chunks("t.tsv", columns))
    assert text == pd.DataFrame(columns).to_csv(sep="\t", index=False, lineterminator="\n", na_rep="NA")
    back = io.read_columns("t.tsv", text.encode(), {"start": int, "gc": float, "n_fraction": float})
    assert list(back) == list(columns)
    for name, values in columns.items():
        np.testing.assert_array_equal(back[name], values)
        assert back[name].dtype == values.dtype


@pytest.mark.parametrize("name", ['chr"1', "chr\t1", "chr\n1", "chr\r1"])
def test_fields_a_table_cannot_hold_are_refused(name):
    with pytest.raises(InputError, match="cannot write a field that holds a tab, a line break or a quote"):
        "".join(io.table_chunks("t.tsv", {"chrom": np.array(["chr2", name]), "start": np.array([0, 1])}))


@pytest.mark.parametrize("body, problem", [
    ("a\tb\n1\t2\n3\n", "row 2 of the table has fewer fields than its header"),
    ("a\tb\n1\t2\t3\n", "row 1 of the table has more fields than its header"),
    ("a\ta\n1\t2\n", "column(s) a appear more than once"),
    ("a\tc\n1\t2\n", "missing column(s) b"),
    ("a\tb\n1\t2.5\n", "column b holds values that are not ints"),
    ("a\tb\nx\t2\n", "column a holds values that are not floats"),
    ("a\tb\n\"1\"\t2\n", "malformed table (quoted fields are not supported)"),
    ("a\tb\n" + "1" * 1025 + "\t2\n", "malformed table (a field of column a is over 1024 bytes)"),
    ("\n\n", "no table after the header (truncated file?)"),
], ids=["short-row", "long-row", "repeated-column", "missing-column", "not-int", "not-float", "quoted", "long-field",
        "empty"])
def test_malformed_tables_are_refused(body, problem):
    with pytest.raises(InputError, match=f"^t.tsv: {re.escape(problem)}"):
        io.read_columns("t.tsv", body.encode(), {"a": float, "b": int})


def test_blank_lines_line_ends_missing_values_and_utf8_are_read():
    columns = io.read_columns("t.tsv", "\na\tb\tc\r\n\n1\tNA\tx\r\n2\t\tµ".encode(), {"a": int, "b": float})
    np.testing.assert_array_equal(columns["a"], [1, 2])
    np.testing.assert_array_equal(columns["b"], [np.nan, np.nan])
    np.testing.assert_array_equal(columns["c"], ["x", "µ"])


def test_many_improper_pairs_are_pointed_out(random_bam, tmp_path, capsys):
    """An aligner flags proper only the pairs inside the insert-size window it estimated (bwa mem: most
    cfDNA fragments over ~260 bp, 12% of the passing records in audit 13's realigned simulations); they are
    not counted. One improper record among 40 proper ones (2.4%) is not worth a warning; 12% is."""
    bins = tmp_path / "bins.tsv"
    io.write_bins(bins, make_bins(), {})
    rows = [(f"p{i}", flag, "chr1", 1000 + 300 * i + offset, 60, "50M", "=", 1000 + 300 * i + 100 - offset, tlen)
            for i in range(20) for flag, offset, tlen in ((0x63, 0, 150), (0x93, 100, -150))]
    rows.append(("x", 0x41, "chr1", 9000, 60, "50M", "=", 9301, 350))
    sam = tmp_path / "mostly_proper.sam"
    sam.write_text("@HD\tVN:1.6\tSO:unsorted\n" + "".join(f"@SQ\tSN:{c}\tLN:{n}\n" for c, n in CONTIGS.items())
                   + "".join("\t".join(map(str, row)) + "\t*\t*\n" for row in rows))
    for bam, warned in ((random_bam, True), (sam_to_bam(sam, tmp_path / "mostly_proper.bam"), False)):
        assert main(["count", str(bam), "--bins", str(bins), "-o", str(tmp_path / "out.tsv"), "--quiet"]) == 0
        assert io.read_counts(tmp_path / "out.tsv").outcomes["improper_pair"] == (354 if warned else 1)
        printed = capsys.readouterr().err
        warning = "% of the records that passed the filters are in pairs not flagged proper"
        assert (warning in printed) == warned, printed


@pytest.mark.parametrize("options", [[], ["-c"], ["-c", "-m", "4"], ["-c", "-m", "16"]])
def test_indexes_samtools_writes_pass_the_index_check(random_bam, tmp_path, options):
    """Valid indexes are never refused (audit 13B also tried -m 1, 12, an x.csi name, reads on few contigs)."""
    bam = tmp_path / "sorted.bam"
    pysam.sort("-o", str(bam), str(random_bam))
    pysam.index(*options, str(bam))
    data = Path(f"{bam}.csi" if options else f"{bam}.bai").read_bytes()
    layout = gzip.decompress(data) if options else data
    assert her2cnv.counts._index_end(layout) == len(layout) - 8  # samtools writes the count of unplaced reads
    broken = bytearray(layout)
    struct.pack_into("<i", broken, 16 + struct.unpack_from("<i", layout, 12)[0] if options else 4, -1)
    with pytest.raises(ValueError, match="^a negative count$"):  # the reference count
        her2cnv.counts._index_end(bytes(broken))
