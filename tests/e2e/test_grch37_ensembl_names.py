"""GRCh37 with Ensembl contig names ("17", not "chr17"), end to end: the assembly is recognised from chr17's
length and ERBB2 is measured at its GRCh37 place (37.84 Mb, not GRCh38's 39.69 Mb).

The simulator writes UCSC names; each file is renamed here as a lab's b37 files would come.
"""
import json
from pathlib import Path

import pysam
import pytest

from conftest import run
from her2cnv import io

SIMULATE = ("--depth", 1.0, "--quiet")


def ensembl_fasta(source: Path, target: Path) -> None:
    with open(source) as lines, open(target, "w") as out:
        for line in lines:
            out.write(">" + line[4:] if line.startswith(">chr") else line)
    pysam.faidx(str(target))


def ensembl_bam(source: Path, target: Path) -> None:
    header = target.with_suffix(".header.sam")
    with pysam.AlignmentFile(str(source)) as alignments:
        header.write_text(alignments.text.replace("\tSN:chr", "\tSN:"))
    pysam.samtools.reheader(str(header), str(source), save_stdout=str(target))
    pysam.index(str(target))


@pytest.fixture(scope="module")
def b37(tmp_path_factory):
    directory = tmp_path_factory.mktemp("b37")
    ucsc = directory / "ucsc.fa"
    run("simulate", "reference", "--assembly", "GRCh37", "-o", ucsc, "--scale", 0.15, "--seed", 4)
    ensembl_fasta(ucsc, directory / "b37.fa")
    run("bins", "--fasta", directory / "b37.fa", "-o", directory / "bins.tsv")
    samples = [(f"N{i}", "--tumor-fraction", 0, "--preset", "none", "--seed", 200 + i) for i in range(5)]
    samples += [("AMP", "--tumor-fraction", 0.3, "--preset", "crc_typical", "--preset", "erbb2_focal", "--seed", 7),
                ("ARM", "--tumor-fraction", 0.3, "--preset", "crc_typical", "--preset", "arm_gain_17q", "--seed", 8)]
    for name, *options in samples:
        run("simulate", "sample", "--reference", ucsc, "-o", directory / f"{name}.ucsc.bam", "--sample", name,
            *options, *SIMULATE)
        ensembl_bam(directory / f"{name}.ucsc.bam", directory / f"{name}.bam")
    normals = [directory / f"N{i}.counts.tsv" for i in range(5)]
    for counts in normals:
        run("count", directory / f"{counts.name.split('.')[0]}.bam", "--bins", directory / "bins.tsv", "-o", counts)
    run("pon", *normals, "-o", directory / "pon.npz")
    for name in ("AMP", "ARM"):
        run("run", directory / f"{name}.bam", "--bins", directory / "bins.tsv", "--pon", directory / "pon.npz",
            "-o", directory / "calls")
    return directory


def _call(b37: Path, name: str) -> dict:
    return json.loads((b37 / "calls" / f"{name}.call.json").read_text())


def test_bins_are_grch37_with_the_fine_locus_at_its_place(b37):
    bins, _ = io.read_bins(b37 / "bins.tsv")
    assert bins.assembly == "GRCh37" and set(bins.contigs) == {"8", "13", "17", "18", "20"}
    locus = bins.kind == "locus"
    assert bins.start[locus].min() == 37_500_000 and bins.end[locus].max() == 38_700_000  # erbb2_locus.grch37.bed


def test_amplicon_is_called_at_its_grch37_place(b37):
    truth = json.loads((b37 / "AMP.ucsc.truth.json").read_text())
    amplicon = next(event for event in truth["events"] if event["name"] == "ERBB2_focal")
    assert (amplicon["start"], amplicon["end"]) == (37_756_253, 38_056_253)
    call = _call(b37, "AMP")
    erbb2, fraction = call["erbb2"], call["tumor_fraction"]
    assert erbb2["status"] == "high_level_amplification", erbb2["reason"]
    assert abs(fraction["estimate"] - 0.3) <= 0.03
    low, high = erbb2["tumor_copy_number_ci95"]
    assert low <= 20 <= high and abs(erbb2["tumor_copy_number"] - 20) <= 3
    assert erbb2["amplicon"]["chrom"] == "17"
    assert abs(erbb2["amplicon"]["start"] - amplicon["start"]) <= 20_000
    assert abs(erbb2["amplicon"]["end"] - amplicon["end"]) <= 20_000
    assert "ERBB2" in erbb2["amplicon"]["genes"] and "TOP2A" not in erbb2["amplicon"]["genes"]


def test_arm_gain_is_not_called_focal(b37):
    erbb2 = _call(b37, "ARM")["erbb2"]
    assert erbb2["status"] == "low_level_gain" and erbb2["focal"] is False, erbb2["reason"]
    assert abs(erbb2["plasma_copy_number"] - (2 + 0.3 * (3 - 2))) <= 0.15
