"""In-silico dilution: the achieved tumour fraction, whole fragments, the header, and refusals.

Inputs are small capture-panel simulations (fast to make, many fragments) on one
reference built for this module.
"""
import json
import re
from pathlib import Path

import numpy as np
import pysam
import pytest

from her2cnv import io, simulate
from her2cnv.cli import main
from her2cnv.errors import InputError


def run(*argv) -> int:
    return main([str(a) for a in argv])


def simulate_panel(reference: Path, name: str, seed: int, tumor_fraction: float) -> Path:
    targets = reference.with_name("targets.bed")
    if not targets.exists():
        targets.write_text("".join(f"chr17\t{s}\t{s + 300}\n" for s in range(39_000_000, 41_000_000, 20_000)))
    bam = reference.with_name(f"{name}.bam")
    assert run("simulate", "sample", "--quiet", "--reference", reference, "-o", bam, "--seed", seed,
               "--sample", name, "--tumor-fraction", tumor_fraction, "--panel", targets, "--panel-depth", 300,
               "--off-target-depth", 0.01) == 0
    return bam


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    reference = tmp_path_factory.mktemp("dilute") / "ref.fa"
    assert run("simulate", "reference", "--quiet", "-o", reference, "--scale", 0.05, "--seed", 2) == 0
    return simulate_panel(reference, "TUMOR", 1, 1.0), simulate_panel(reference, "NORMAL", 2, 0.0)


def fragments_by_read_group(bam: Path) -> dict[str, int]:
    """Primary first mates per read group: the tumour's and the normal's fragments, counted independently."""
    counts: dict[str, int] = {}
    with pysam.AlignmentFile(str(bam)) as alignments:
        for record in alignments.fetch(until_eof=True):
            if record.is_read1 and not record.is_secondary and not record.is_supplementary:
                group = record.get_tag("RG")
                counts[group] = counts.get(group, 0) + 1
    return counts


def records_per_name(alignments) -> dict[str, int]:
    names: dict[str, int] = {}
    for record in alignments.fetch(until_eof=True):
        names[record.query_name] = names.get(record.query_name, 0) + 1
    return names


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"her2cnv: error: [^\n]+", err), err
    return err


def test_dilution_hits_the_fraction(inputs, tmp_path):
    """Fragments are taken by hash rank, so counts are exact: |achieved - F| <= 1/N (rounding of F N)."""
    tumor, normal = inputs
    out = tmp_path / "mix.bam"
    assert run("dilute", "--quiet", tumor, normal, "--fraction", 0.1, "-o", out, "--seed", 3) == 0
    summary = json.loads((tmp_path / "mix.dilution.json").read_text())
    n = summary["n_fragments"]
    assert n == summary["available_normal_fragments"] / 0.9 // 1  # default: the most the normal allows
    assert abs(summary["achieved_fraction"] - 0.1) <= 1 / n
    assert summary["requested_fraction"] == 0.1 and summary["sample"] == "mix"
    by_group = fragments_by_read_group(out)
    assert by_group == {"TUMOR": summary["n_tumor_fragments"], "NORMAL": summary["n_normal_fragments"]}
    with pysam.AlignmentFile(str(out)) as alignments:
        header = alignments.header.to_dict()
        assert alignments.check_index()
        names = records_per_name(alignments)
    assert {group["SM"] for group in header["RG"]} == {"mix"}
    assert header["HD"]["SO"] == "coordinate"
    assert set(names.values()) <= {2}  # both mates of every fragment (pairs only in these inputs)


def test_fixed_total_and_determinism(inputs, tmp_path):
    tumor, normal = inputs
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        assert run("dilute", "--quiet", tumor, normal, "--fraction", 0.25, "--fragments", 20_000, "--seed", seed,
                   "-o", tmp_path / f"{name}.bam", "--sample", "MIX") == 0
    summary = json.loads((tmp_path / "a.dilution.json").read_text())
    assert (summary["n_tumor_fragments"], summary["n_normal_fragments"]) == (5000, 15000)
    assert fragments_by_read_group(tmp_path / "a.bam") == {"TUMOR": 5000, "NORMAL": 15000}
    assert (tmp_path / "a.bam").read_bytes() == (tmp_path / "b.bam").read_bytes()
    assert (tmp_path / "a.bam").read_bytes() != (tmp_path / "c.bam").read_bytes()


def test_plan_dilution_limits():
    hashes = np.arange(1000, dtype=np.uint32)
    plan = simulate.plan_dilution(hashes[:100], hashes, 0.5, None, 1)
    assert (plan.n_tumor, plan.n_normal) == (100, 100)
    assert plan.tumor_threshold == 99 and plan.normal_threshold == 99
    assert simulate.plan_dilution(hashes, hashes, 0.0, None, 1).n_normal == 1000
    with pytest.raises(InputError, match="needs 600 tumour"):
        simulate.plan_dilution(hashes[:100], hashes, 0.5, 1200, 1)
    with pytest.raises(InputError, match="--fraction"):
        simulate.plan_dilution(hashes, hashes, 1.5, None, 1)


def test_refuses_mismatched_contigs(inputs, tmp_path, capsys):
    other_reference = tmp_path / "other.fa"
    assert run("simulate", "reference", "--quiet", "-o", other_reference, "--scale", 0.06, "--contigs",
               "chr17,chr8") == 0
    other = simulate_panel(other_reference, "OTHER", 1, 1.0)
    out = tmp_path / "mix.bam"
    assert run("dilute", "--quiet", other, inputs[1], "--fraction", 0.5, "-o", out) == 2
    message = one_line_error(capsys)
    assert str(other) in message and "contigs differ" in message
    assert not out.exists() and not (tmp_path / "mix.dilution.json").exists()
    assert not list(tmp_path.glob(".mix*"))


def test_refuses_missing_input_and_impossible_total(inputs, tmp_path, capsys):
    tumor, normal = inputs
    assert run("dilute", "--quiet", tmp_path / "none.bam", normal, "--fraction", 0.5, "-o", tmp_path / "m.bam") == 2
    assert "none.bam" in one_line_error(capsys)
    assert run("dilute", "--quiet", tumor, normal, "--fraction", 0.5, "--fragments", 10**9,
               "-o", tmp_path / "m.bam") == 2
    assert "--fragments" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []
    assert io.beside_output(tmp_path / "m.bam", "dilution.json").name == "m.dilution.json"
