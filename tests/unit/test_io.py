"""File formats: round trips, refusals, and atomic writes."""
import gzip

import numpy as np
import pytest

from her2cnv import io
from her2cnv.errors import Her2CnvError, InputError
from her2cnv.types import COUNT_OUTCOMES, Bins, FragmentCounts


def small_bins():
    return Bins(chrom=np.array(["chr17"] * 3), start=np.array([0, 10, 20]), end=np.array([10, 20, 30]),
                kind=np.array(["genome", "locus", "locus"]), gene=np.array(["", "ERBB2", "ERBB2,MIEN1"]),
                gc=np.array([0.4, np.nan, 0.6]), n_fraction=np.array([0.0, 1.0, 0.1]), assembly="GRCh38",
                contig_lengths={"chr17": 40})


def small_counts():
    return FragmentCounts(sample="S1", bins=small_bins(), count=np.array([5, 0, 7]), short_count=np.array([1, 0, 2]),
                          outcomes={k: i for i, k in enumerate(COUNT_OUTCOMES)},
                          fragment_length_histogram=np.arange(5), metadata={"version": "x"})


@pytest.mark.parametrize("name", ["b.tsv", "b.tsv.gz"])
def test_bins_round_trip(tmp_path, name):
    io.write_bins(tmp_path / name, small_bins(), {"tool": "her2cnv"})
    read, header = io.read_bins(tmp_path / name)
    assert read.checksum == small_bins().checksum
    np.testing.assert_array_equal(read.gene, small_bins().gene)
    assert np.isnan(read.gc[1]) and read.gc[2] == 0.6
    assert header["provenance"] == {"tool": "her2cnv"}


def test_gzip_output_is_reproducible(tmp_path):
    io.write_bins(tmp_path / "a.tsv.gz", small_bins(), {})
    io.write_bins(tmp_path / "b.tsv.gz", small_bins(), {})
    assert (tmp_path / "a.tsv.gz").read_bytes() == (tmp_path / "b.tsv.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.tsv.gz").read_bytes()).startswith(b"#format=")


def test_counts_round_trip(tmp_path):
    io.write_counts(tmp_path / "c.tsv", small_counts())
    read = io.read_counts(tmp_path / "c.tsv")
    np.testing.assert_array_equal(read.count, [5, 0, 7])
    assert read.outcomes == small_counts().outcomes and read.sample == "S1"


def test_counts_with_edited_rows_are_refused(tmp_path):
    io.write_counts(tmp_path / "c.tsv", small_counts())
    text = (tmp_path / "c.tsv").read_text().replace("chr17\t20\t30", "chr17\t20\t31")
    (tmp_path / "c.tsv").write_text(text)
    with pytest.raises(InputError, match="checksum"):
        io.read_counts(tmp_path / "c.tsv")


def test_truncated_counts_are_refused(tmp_path):
    io.write_counts(tmp_path / "c.tsv", small_counts())
    data = (tmp_path / "c.tsv").read_text()
    (tmp_path / "c.tsv").write_text(data[: len(data) - 12])
    with pytest.raises(InputError, match="c.tsv"):
        io.read_counts(tmp_path / "c.tsv")


@pytest.mark.parametrize("version, message", [("9", "newer than this her2cnv"),
                                              ("1", "made by an older her2cnv .* remake it with 'her2cnv count'"),
                                              ("1.1", "format version '1.1' is not a her2cnv version number")])
def test_other_format_versions_are_refused(tmp_path, version, message):
    io.write_counts(tmp_path / "c.tsv", small_counts())
    text = (tmp_path / "c.tsv").read_text().replace(io.COUNTS_FORMAT, f"her2cnv.counts/{version}")
    (tmp_path / "c.tsv").write_text(text)
    with pytest.raises(InputError, match=message):
        io.read_counts(tmp_path / "c.tsv")


def edit_body(path, column: int, value: str):
    """Set ``column`` of the first data row of a her2cnv table, as a hand edit would."""
    lines = path.read_text().splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines) if not line.startswith(("#", "chrom")))
    fields = lines[row].rstrip("\n").split("\t")
    fields[column] = value
    lines[row] = "\t".join(fields) + "\n"
    path.write_text("".join(lines))


@pytest.mark.parametrize("column, value", [(3, "target"), (4, "ERBB2"), (5, "0.41"), (6, "0.5")])
def test_hand_edits_of_any_bin_column_are_refused(tmp_path, column, value):
    """The checksum covers GC, N fraction, kind and genes, not only coordinates: bins from another FASTA
    with the same contig lengths differ only there, and normalisation uses the counts' own copy."""
    io.write_counts(tmp_path / "c.tsv", small_counts())
    edit_body(tmp_path / "c.tsv", column, value)
    with pytest.raises(InputError, match="do not match the bins checksum"):
        io.read_counts(tmp_path / "c.tsv")
    io.write_bins(tmp_path / "b.tsv", small_bins(), {})
    edit_body(tmp_path / "b.tsv", column, value)
    with pytest.raises(InputError, match="do not match the checksum"):
        io.read_bins(tmp_path / "b.tsv")


@pytest.mark.parametrize("edit, message", [
    (("#assembly=\"GRCh38\"", "#assembly=[\"GRCh38\"]"), "header 'assembly' is not a known assembly"),
    (("#sample=\"S1\"", "#sample=null"), "header 'sample' is not a sample name"),
    (("#sample=\"S1\"", "#sample=\"S1\"\n#sample=\"S2\""), "repeats 'sample'"),
    (("\"records_seen\":0", "\"records_seen\":1e400"), "header 'outcomes' is not every outcome"),
    (("\"records_seen\":0", "\"records_seen\":-5"), "header 'outcomes' is not every outcome"),
    (("#fragment_length_histogram=[0,", "#fragment_length_histogram=[1e400,"), "is not a list of counts"),
    (("#provenance={", "#provenance=5\n#x={"), "header 'provenance' is not a JSON object"),
    (("\t5\t1\n", "\t99999999999999999999\t1\n"), "column count holds values that are not ints"),
    (("\t5\t1\n", "\t5\t6\n"), "more short fragments than fragments"),
])
def test_malformed_counts_headers_and_values_are_refused(tmp_path, edit, message):
    io.write_counts(tmp_path / "c.tsv", small_counts())
    text = (tmp_path / "c.tsv").read_text()
    assert edit[0] in text
    (tmp_path / "c.tsv").write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(InputError, match=message):
        io.read_counts(tmp_path / "c.tsv")


def test_a_table_cut_after_its_header_is_refused(tmp_path):
    io.write_bins(tmp_path / "b.tsv", small_bins(), {})
    lines = (tmp_path / "b.tsv").read_text().splitlines(keepends=True)
    header = "".join(line for line in lines if line.startswith("#"))
    (tmp_path / "b.tsv").write_text(header)
    with pytest.raises(InputError, match="no table after the header"):
        io.read_bins(tmp_path / "b.tsv")


def test_corrupt_gzip_is_refused(tmp_path):
    io.write_bins(tmp_path / "b.tsv.gz", small_bins(), {})
    data = bytearray((tmp_path / "b.tsv.gz").read_bytes())
    data[40:48] = b"XXXXXXXX"
    (tmp_path / "b.tsv.gz").write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt or truncated gzip"):
        io.read_bins(tmp_path / "b.tsv.gz")


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError):
        with io.atomic_output(target) as temporary:
            temporary.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_directory_is_reported(tmp_path):
    with pytest.raises(Her2CnvError, match="does not exist"):
        io.write_text(tmp_path / "missing" / "x.tsv", "x")


def test_output_path_refuses_escaping_names(tmp_path):
    assert io.output_path(tmp_path, "P7", "monitor.tsv") == tmp_path / "P7.monitor.tsv"
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(InputError):
            io.output_path(tmp_path, bad, "call.json")


def test_malformed_bed_lines_are_named(tmp_path):
    (tmp_path / "t.bed").write_text("chr17\t10\t20\nchr17\tx\t30\n")
    with pytest.raises(InputError, match="line 2"):
        io.read_bed(tmp_path / "t.bed")


def test_text_written_in_pieces_is_the_text_written_whole(tmp_path):
    """Tables are written a chunk at a time; plain and gzipped, the bytes are those of the whole text
    (gzipped as gzip.compress(mtime=0) does, so reruns stay byte-identical)."""
    pieces = [f"row\t{i}\t{i / 7!r}\n" * (i % 5) for i in range(3000)]
    for name, expected in (("t.tsv", "".join(pieces).encode()),
                           ("t.tsv.gz", gzip.compress("".join(pieces).encode(), compresslevel=6, mtime=0))):
        io.write_text(tmp_path / name, iter(pieces))
        assert (tmp_path / name).read_bytes() == expected
