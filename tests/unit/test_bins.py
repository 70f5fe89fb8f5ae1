"""Bin layout, assembly recognition and gene labels on small hand-made inputs."""
import numpy as np
import pytest

from her2cnv import bins, io
from her2cnv.errors import InputError
from her2cnv.types import Bins

GRCH38 = io.load_assembly("GRCh38")
GRCH37 = io.load_assembly("GRCh37")


def test_assembly_is_recognised_from_chr17_length_with_either_naming():
    assert bins.detect_assembly({"chr17": 83_257_441}, [GRCH38, GRCH37], "x").name == "GRCh38"
    assert bins.detect_assembly({"17": 81_195_210, "1": 5}, [GRCH38, GRCH37], "x").name == "GRCh37"
    with pytest.raises(InputError, match="matches no supported assembly"):
        bins.detect_assembly({"chr17": 1000}, [GRCH38, GRCH37], "ref.fa")
    with pytest.raises(InputError, match="no chr17"):
        bins.detect_assembly({"chr1": 1000}, [GRCH38, GRCH37], "ref.fa")


def test_genome_layout_tiles_contigs_and_puts_fine_bins_over_the_locus():
    lengths = {"chr1": 250_500, "chr17": 83_257_441, "chrY": 1000, "chrUn_x": 5000}
    chrom, start, end, kind = bins.genome_layout(lengths, GRCH38, bins.default_contigs(lengths))
    assert set(chrom) == {"chr1", "chr17"}  # chrY and unplaced contigs are left out
    assert list(end[chrom == "chr1"]) == [100_000, 200_000, 250_500]
    on17 = chrom == "chr17"
    assert start[on17][0] == 0 and end[on17][-1] == 83_257_441
    assert np.all(start[on17][1:] == end[on17][:-1])  # contiguous, no gaps or overlaps
    locus = kind == "locus"
    assert start[locus].min() == 39_300_000 and end[locus].max() == 40_600_000
    assert np.all(end[locus] - start[locus] == 10_000)
    assert locus.sum() == 130


def test_arm_index_puts_bins_from_the_centromere_on_the_q_arm():
    lengths = {"chr17": 83_257_441, "chr8": 145_138_636, "chrUn_x": 500_000}
    chrom, start, end, kind = bins.genome_layout(lengths, GRCH38, ["chr8", "chr17", "chrUn_x"])
    layout = Bins(chrom=chrom, start=start, end=end, kind=kind, gene=np.full(len(chrom), ""),
                       gc=np.full(len(chrom), 0.4), n_fraction=np.zeros(len(chrom)), assembly="GRCh38")
    arm = bins.arm_index(layout, GRCH38)
    for contig, centromere in (("chr17", 25_100_000), ("chr8", 45_200_000)):  # GRCh38 p/q boundaries
        on = chrom == contig
        assert np.array_equal(arm[on] == 1, start[on] >= centromere)
    assert np.all(arm[chrom == "chrUn_x"] == 1)  # no centromere known: one arm
    assert np.all(arm[kind == "locus"] == 1)  # the 17q12 fine bins lie on 17q


def test_gene_labels_follow_the_reference_coordinates():
    chrom = np.array(["chr17", "17", "chr17", "chr1"])
    start = np.array([39_700_000, 39_730_000, 39_000_000, 39_700_000])
    end = np.array([39_710_000, 39_740_000, 39_010_000, 39_710_000])
    labels = bins.annotate_genes(chrom, start, end, GRCH38)
    assert list(labels) == ["ERBB2", "ERBB2,MIEN1,GRB7", "", ""]


def test_erbb2_span_in_both_builds_matches_reference_facts():
    # reference/SOURCES.md: GRCh38 39,687,914-39,730,426; GRCh37 37,844,167-37,886,679 (1-based inclusive)
    assert GRCH38.gene_span("ERBB2") == (39_687_913, 39_730_426)
    assert GRCH37.gene_span("ERBB2") == (37_844_166, 37_886_679)


def test_target_layout_merges_targets_and_adds_off_target_bins():
    lengths = {"chr17": 83_257_441, "chr1": 1_000_000}
    chrom, start, end, kind = bins.target_layout(
        np.array(["17", "chr17", "chr1"]), np.array([500_000, 500_100, 10_000]), np.array([500_200, 500_400, 10_200]),
        lengths, off_target_size=100_000)
    targets = kind == "target"
    assert list(zip(chrom[targets], start[targets], end[targets])) == [("chr17", 500_000, 500_400), ("chr1", 10_000, 10_200)]
    off = (kind == "offtarget") & (chrom == "chr17")
    assert off.sum() == 4 and start[off][0] == 1000 and end[off][-1] == 499_000
    with pytest.raises(InputError, match="not in the reference"):
        bins.target_layout(np.array(["chr5"]), np.array([0]), np.array([10]), lengths)


def test_canonical_contig_names():
    assert [bins.canonical_contig(c) for c in ("chr17", "17", "CHRX", "MT", "chrM")] == ["17", "17", "X", "M", "M"]


@pytest.mark.parametrize("change, message", [
    ({"kind": np.array(["genome", "exon", "genome"])}, r"unknown bin kind\(s\) \['exon'\]"),
    ({"start": np.array([0, 50, 200])}, "chr1:50-200 overlaps or precedes"),
    ({"chrom": np.array(["chr1", "chr2", "chr1"])}, "each contig must be contiguous"),
    ({"chrom": np.array(["chr1", "1", "1"])}, "contigs chr1 and 1 name the same chromosome"),
    ({"gc": np.array([0.4, 1.5, 0.4])}, "GC fractions must lie between 0 and 1"),
    ({"gc": np.array([0.4, np.inf, 0.4])}, "GC fractions must lie between 0 and 1"),
    ({"n_fraction": np.array([0.0, -5.0, 0.0])}, "N fractions must lie between 0 and 1"),
    ({"contig_lengths": {"chr1": 250}}, "bins of chr1 reach past its recorded length 250"),
    ({"contig_lengths": {"chr2": 300}}, "no valid length recorded for contig chr1"),
])
def test_bins_that_cannot_be_counted_are_refused(change, message):
    columns = dict(chrom=np.array(["chr1"] * 3), start=np.array([0, 100, 200]), end=np.array([100, 200, 300]),
                   kind=np.array(["genome"] * 3), gene=np.full(3, ""), gc=np.full(3, 0.4), n_fraction=np.zeros(3))
    with pytest.raises(ValueError, match=message):
        Bins(**{**columns, **change}, assembly="GRCh38")
