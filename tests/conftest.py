"""A small simulated cohort shared by the failure, fuzz and determinism tests.

One reference (chr17 at full length, the other contigs at 5%), its bins, four
normals at low depth with their counts and panel, and one plasma sample with an
ERBB2 amplification (deep enough that its call passes QC). Built once per session
through ``her2cnv.cli.main``.
"""
from pathlib import Path
from types import SimpleNamespace

import pytest

from her2cnv import simulate
from her2cnv.cli import main

N_NORMALS = 4


@pytest.fixture(scope="session")
def modelled_short_share():
    """The share of an origin's ("normal", "tumor") fragments in 90-150 bp under the simulator's default length
    model, integrated from its Gaussian mixture (the simulator draws lengths; this does not)."""
    def share(origin: str) -> float:
        return simulate.short_fragment_share(simulate.FRAGMENT_LENGTH_MODEL[origin], 90, 150)
    return share


def run_ok(*arguments) -> None:
    assert main([*map(str, arguments), "--quiet"]) == 0, arguments


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> SimpleNamespace:
    directory: Path = tmp_path_factory.mktemp("small_cohort")
    cohort = SimpleNamespace(directory=directory, reference=directory / "ref.fa", bins=directory / "bins.tsv",
                             pon=directory / "pon.npz", normals=[], normal_counts=[],
                             plasma=directory / "S.bam", plasma_counts=directory / "S.counts.tsv")
    run_ok("simulate", "reference", "-o", cohort.reference, "--scale", 0.05, "--seed", 3)
    run_ok("bins", "--fasta", cohort.reference, "-o", cohort.bins)
    for i in range(N_NORMALS):
        bam = directory / f"N{i}.bam"
        run_ok("simulate", "sample", "--reference", cohort.reference, "-o", bam, "--seed", 100 + i,
               "--sample", f"N{i}", "--tumor-fraction", 0, "--preset", "none", "--depth", 0.2)
        run_ok("count", bam, "--bins", cohort.bins, "-o", directory / f"N{i}.counts.tsv")
        cohort.normals.append(bam)
        cohort.normal_counts.append(directory / f"N{i}.counts.tsv")
    run_ok("pon", *cohort.normal_counts, "-o", cohort.pon)
    run_ok("simulate", "sample", "--reference", cohort.reference, "-o", cohort.plasma, "--seed", 200,
           "--sample", "S", "--tumor-fraction", 0.3, "--preset", "erbb2_focal", "--depth", 0.5)
    run_ok("count", cohort.plasma, "--bins", cohort.bins, "-o", cohort.plasma_counts)
    run_ok("call", cohort.plasma_counts, "--pon", cohort.pon, "-o", directory / "calls", "--no-plots",
           "--patient", "P1", "--date", "2026-01-05")
    cohort.call = directory / "calls" / "S.call.json"
    return cohort
