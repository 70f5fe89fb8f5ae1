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
                gc=np.array([0.4, np.nan, 0.6]), n_fraction=np.array([0.0, 1.0, 0.1]), assembly="GRCh38")


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


def test_newer_format_version_is_refused(tmp_path):
    io.write_counts(tmp_path / "c.tsv", small_counts())
    text = (tmp_path / "c.tsv").read_text().replace("her2cnv.counts/1", "her2cnv.counts/9")
    (tmp_path / "c.tsv").write_text(text)
    with pytest.raises(InputError, match="newer than this her2cnv"):
        io.read_counts(tmp_path / "c.tsv")


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
