"""Same inputs, same bytes: every command, run again into another directory, writes identical files.

Each command runs twice in this process (state left over from a first run must
not matter) and once in a fresh interpreter with another hash seed (nothing may
depend on the order of a set or of a dict built from one). Provenance names the
inputs (the same paths every time), never the output directory, so every file
must match byte for byte: tables, JSON, gzip (no name or time stamp), .npz (fixed
entry times), BAM and index, FASTA and .fai, PNG and HTML.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from her2cnv.cli import main

COMMANDS = ("simulate_reference", "simulate_sample", "simulate_counts", "bins", "count", "count_gz", "count_threads",
            "pon", "normalize", "call", "run", "dilute")


def commands(cohort, out: Path) -> dict[str, list]:
    """Each command's arguments, writing under ``out``."""
    return {
        "simulate_reference": ["simulate", "reference", "-o", out / "ref.fa", "--scale", 0.05, "--seed", 5],
        "simulate_sample": ["simulate", "sample", "--reference", cohort.reference, "-o", out / "T.bam",
                            "--seed", 7, "--sample", "T", "--tumor-fraction", 0.3, "--depth", 0.1],
        "simulate_counts": ["simulate", "sample", "--reference", cohort.reference, "--bins", cohort.bins,
                            "-o", out / "T.counts.tsv", "--seed", 7, "--sample", "T", "--tumor-fraction", 0.3,
                            "--depth", 0.1],
        "bins": ["bins", "--fasta", cohort.reference, "-o", out / "bins.tsv"],
        "count": ["count", cohort.normals[0], "--bins", cohort.bins, "-o", out / "N0.counts.tsv"],
        "count_gz": ["count", cohort.normals[0], "--bins", cohort.bins, "-o", out / "N0.counts.tsv.gz"],
        "count_threads": ["count", cohort.normals[0], "--bins", cohort.bins, "-o", out / "N0.counts.tsv",
                          "--threads", 2],
        "pon": ["pon", *cohort.normal_counts, "-o", out / "pon.npz"],
        "normalize": ["normalize", cohort.plasma_counts, "--pon", cohort.pon, "-o", out / "S.ratios.tsv"],
        "call": ["call", cohort.plasma_counts, "--pon", cohort.pon, "-o", out / "calls"],
        "run": ["run", cohort.plasma, "--bins", cohort.bins, "--pon", cohort.pon, "-o", out / "run"],
        "dilute": ["dilute", cohort.plasma, cohort.normals[0], "--fraction", 0.2, "-o", out / "D.bam"],
    }


def files_under(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


@pytest.fixture(scope="module")
def fresh_interpreter_outputs(small_cohort, tmp_path_factory) -> Path:
    """Every command run once in a new Python process with PYTHONHASHSEED=1, into ROOT/<command>/."""
    root = tmp_path_factory.mktemp("determinism_fresh")
    argvs = []
    for command in COMMANDS:
        (root / command).mkdir()
        argvs.append([*map(str, commands(small_cohort, root / command)[command]), "--quiet"])
    script = ("import json, sys\nfrom her2cnv.cli import main\n"
              "for argv in json.load(sys.stdin):\n    assert main(argv) == 0, argv\n")
    # run from the output folder: from the repository root, 'python -c' would import the source tree rather
    # than the installed package (which alone holds the compiled counter and her2cnv.reference)
    result = subprocess.run([sys.executable, "-c", script], input=json.dumps(argvs), capture_output=True, text=True,
                            env={**os.environ, "PYTHONHASHSEED": "1"}, timeout=600, cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def test_every_command_is_checked(small_cohort, tmp_path):
    assert set(commands(small_cohort, tmp_path)) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_same_inputs_give_identical_bytes(command, small_cohort, fresh_interpreter_outputs, tmp_path):
    outputs = {"fresh interpreter": files_under(fresh_interpreter_outputs / command)}
    for name in ("first", "second"):
        out = tmp_path / name
        out.mkdir()
        arguments = commands(small_cohort, out)[command]
        assert main([*map(str, arguments), "--quiet"]) == 0, arguments
        outputs[name] = files_under(out)
    assert outputs["first"], "nothing written"
    for name in ("second", "fresh interpreter"):
        assert sorted(outputs[name]) == sorted(outputs["first"]), name
        different = [path for path in outputs["first"] if outputs["first"][path] != outputs[name][path]]
        assert not different, f"{name}: {different}"
