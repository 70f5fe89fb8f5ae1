"""A small simulated cohort shared by the end-to-end tests.

One small genome (chr17 at full length so ERBB2 is at its real place, four other
contigs at 15%) and six normals are built once per session; each test then
simulates, counts and calls its own samples through ``her2cnv.cli.main``.
"""
import json
from pathlib import Path

import pytest

from her2cnv.cli import main

NORMALS = 6
SCALE = "0.15"
DEPTH = "1.0"


def run(*arguments):
    assert main([*map(str, arguments), "--quiet"]) == 0, arguments


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pipeline")
    reference = directory / "reference.fa"
    run("simulate", "reference", "-o", reference, "--scale", SCALE, "--seed", 3,
        "--contigs", "chr8,chr13,chr17,chr18,chr20")
    run("bins", "--fasta", reference, "-o", directory / "bins.tsv")
    counts = []
    for i in range(NORMALS):
        bam = directory / f"N{i}.bam"
        run("simulate", "sample", "--reference", reference, "-o", bam, "--seed", 100 + i, "--sample", f"N{i}",
            "--tumor-fraction", 0, "--preset", "none", "--depth", DEPTH)
        counts.append(directory / f"N{i}.counts.tsv")
        run("count", bam, "--bins", directory / "bins.tsv", "-o", counts[-1])
    run("pon", *counts, "-o", directory / "pon.npz")
    return directory


def call_simulated(cohort: Path, name: str, *simulation, call_options=(), outdir: str = "calls") -> dict:
    """Simulate one plasma sample and run 'her2cnv run' on it; return its call.json."""
    bam = cohort / f"{name}.bam"
    run("simulate", "sample", "--reference", cohort / "reference.fa", "-o", bam, "--sample", name,
        "--depth", DEPTH, *simulation)
    run("run", bam, "--bins", cohort / "bins.tsv", "--pon", cohort / "pon.npz", "-o", cohort / outdir, *call_options)
    return json.loads((cohort / outdir / f"{name}.call.json").read_text())
