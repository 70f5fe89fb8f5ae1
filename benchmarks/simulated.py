"""Shared set-up of the simulation benchmarks: run the CLI, and make a cached reference with its bins."""
from __future__ import annotations

from pathlib import Path

from her2cnv.cli import main


def run(*arguments) -> None:
    """``her2cnv ARGUMENTS --quiet`` in-process; stop the benchmark if it fails."""
    if main([*map(str, arguments), "--quiet"]) != 0:
        raise SystemExit(f"failed: her2cnv {' '.join(map(str, arguments))}")


def reference_and_bins(work: Path, contigs: str, seed: int, scale: float = 0.2) -> tuple[Path, Path]:
    """A simulated reference (kept between runs) in ``work`` and genome-wide bins for it."""
    work.mkdir(parents=True, exist_ok=True)
    reference = work / "reference.fa"
    if not reference.exists():
        run("simulate", "reference", "-o", reference, "--scale", scale, "--seed", seed, "--contigs", contigs)
    run("bins", "--fasta", reference, "-o", work / "bins.tsv")
    return reference, work / "bins.tsv"


def simulated_counts(work: Path, reference: Path, bins: Path, name: str, *simulation) -> Path:
    """``work/NAME.counts.tsv`` (kept between runs): ``simulate sample`` a BAM with ``simulation``'s options,
    then ``count`` it."""
    counts = work / f"{name}.counts.tsv"
    if not counts.exists():
        run("simulate", "sample", "--reference", reference, "-o", work / f"{name}.bam", "--sample", name, *simulation)
        run("count", work / f"{name}.bam", "--bins", bins, "-o", counts)
    return counts
