#!/usr/bin/env python3
"""Time and measure ``her2cnv count`` against samtools and mosdepth on the same BAM, in one run.

Threads are total threads per process (her2cnv ``--threads N`` adds N decompression threads
to the reading thread; samtools ``-@ N`` likewise; mosdepth ``-t N`` too).
Each command runs ``--repeats`` times (default 3); the table reports the median
wall time, the ratio to single-threaded ``samtools view -c`` (the floor: decompress
and decode every record) and the peak resident memory of the process tree, read
from ``wait4``'s rusage. With no ``--bam``, a BAM of about ``--records`` records is
simulated first with ``her2cnv simulate``.

Usage: python benchmarks/bench_count.py [--bam X.bam] [--records 5500000] [--out benchmarks/results/count.md]
Needs samtools and mosdepth on PATH (Debian: apt-get install samtools mosdepth).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pysam

SAMTOOLS_FILTER = ["-q", "20", "-F", "0xF04"]


def run_measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = process.stderr.read().decode()
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark: command failed: {' '.join(command)}\n{stderr}")
    return elapsed, usage.ru_maxrss / 1024


def simulate_bam(directory: Path, records: int) -> Path:
    """A low-pass WGS BAM with about ``records`` records from the her2cnv simulator."""
    reference = directory / "reference.fa"
    bam = directory / "bench.bam"
    if not bam.exists():
        if not reference.exists():
            subprocess.run(["her2cnv", "simulate", "reference", "-o", str(reference), "--scale", "1.0",
                            "--contigs", "chr17,chr18,chr19,chr20,chr21,chr22", "--seed", "11"], check=True)
        genome = sum(pysam.FastaFile(str(reference)).lengths)
        depth = records * 100 / genome  # 100 bp reads, both mates counted
        subprocess.run(["her2cnv", "simulate", "sample", "--reference", str(reference), "-o", str(bam),
                        "--sample", "BENCH", "--seed", "5", "--tumor-fraction", "0.2", "--preset", "erbb2_focal",
                        "--depth", f"{depth:.3f}", "--read-length", "100", "--quiet"], check=True)
    return bam


def with_sequences(bam: Path) -> Path:
    """A copy of ``bam`` whose records carry random bases and qualities of their CIGAR length.

    The simulator writes SEQ and QUAL as '*', which makes records ~5x smaller than real 100 bp reads and
    decompression unrealistically cheap; a pool of 2,000 random reads (larger than BGZF's 32 KB window)
    keeps the compressed size realistic.
    """
    output = bam.with_name(bam.stem + ".seq.bam")
    if output.exists():
        return output
    rng = __import__("random").Random(3)
    pool = ["".join(rng.choice("ACGT") for _ in range(150)) for _ in range(2000)]
    qualities = [pysam.qualitystring_to_array("".join(rng.choice("FFFF:,") for _ in range(150))) for _ in range(2000)]
    with pysam.AlignmentFile(str(bam)) as source, \
            pysam.AlignmentFile(str(output), "wb", template=source, threads=2) as target:
        for i, record in enumerate(source.fetch(until_eof=True)):
            length = record.infer_query_length() or 100
            record.query_sequence = pool[i % 2000][:length]
            record.query_qualities = qualities[(i * 7) % 2000][:length]
            target.write(record)
    pysam.index(str(output))
    return output


def make_bins(directory: Path, reference: Path, bin_size: int) -> tuple[Path, Path]:
    bins = directory / f"bins_{bin_size}.tsv"
    bed = directory / f"bins_{bin_size}.bed"
    if not bins.exists():
        subprocess.run(["her2cnv", "bins", "--fasta", str(reference), "-o", str(bins), "--bin-size", str(bin_size)],
                       check=True)
        with open(bins) as source, open(bed, "w") as target:
            for line in source:
                if not line.startswith(("#", "chrom\t")):
                    target.write("\t".join(line.split("\t")[:3]) + "\n")
    return bins, bed


def tool_version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, errors="replace").stdout.splitlines()[0]
    except (OSError, IndexError):
        return "not found"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bam", type=Path, help="BAM to use (default: simulate one)")
    parser.add_argument("--reference", type=Path, help="its reference FASTA (default: the simulated one)")
    parser.add_argument("--records", type=int, default=5_500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(__file__).parent / "work")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "count.md")
    args = parser.parse_args()
    for tool in ("samtools", "mosdepth", "her2cnv"):
        if shutil.which(tool) is None:
            sys.exit(f"benchmark: {tool} is not on PATH")
    args.work.mkdir(parents=True, exist_ok=True)
    bam = args.bam or with_sequences(simulate_bam(args.work, args.records))
    reference = args.reference or args.work / "reference.fa"
    n_records = int(subprocess.run(["samtools", "view", "-c", str(bam)], capture_output=True, text=True).stdout)
    bins_10k, bed_10k = make_bins(args.work, reference, 10_000)
    bins_100k, _ = make_bins(args.work, reference, 100_000)
    out = args.work / "out"
    out.mkdir(exist_ok=True)
    her2cnv = ["her2cnv", "count", str(bam), "--quiet", "-o", str(out / "counts.tsv")]
    commands = [
        ("samtools view -c (filters)", 1, "count records", ["samtools", "view", "-c", *SAMTOOLS_FILTER, str(bam)]),
        ("samtools view -c (filters)", 2, "count records", ["samtools", "view", "-c", "-@", "1", *SAMTOOLS_FILTER, str(bam)]),
        ("pysam's samtools view -c (zlib htslib)", 1, "count records",
         [sys.executable, "-c", "import pysam, sys; pysam.view('-c', '-q', '20', '-F', '0xF04', sys.argv[1])",
          str(bam)]),
        ("her2cnv count", 1, "100 kb + locus bins", her2cnv + ["--bins", str(bins_100k)]),
        ("her2cnv count", 1, "10 kb bins", her2cnv + ["--bins", str(bins_10k)]),
        ("her2cnv count", 2, "10 kb bins", her2cnv + ["--bins", str(bins_10k), "--threads", "1"]),
        ("her2cnv count", 3, "10 kb bins", her2cnv + ["--bins", str(bins_10k), "--threads", "2"]),
        ("mosdepth -n --fast-mode --by", 1, "10 kb bins", ["mosdepth", "-n", "--fast-mode", "-Q", "20", "-F", "3844",
                                                           "--by", str(bed_10k), str(out / "mosdepth"), str(bam)]),
        ("mosdepth -n --fast-mode --by", 2, "10 kb bins", ["mosdepth", "-n", "--fast-mode", "-t", "1", "-Q", "20", "-F",
                                                           "3844", "--by", str(bed_10k), str(out / "mosdepth"), str(bam)]),
        ("samtools bedcov -c", 1, "10 kb bins", ["samtools", "bedcov", "-c", "-Q", "20", str(bed_10k), str(bam)]),
    ]
    results = []
    for name, threads, mode, command in commands:
        runs = [run_measured(command) for _ in range(args.repeats)]
        results.append((name, threads, mode, statistics.median(r[0] for r in runs), max(r[1] for r in runs)))
        print(f"{name:32s} threads={threads} {mode:22s} {results[-1][3]:7.2f} s {results[-1][4]:7.1f} MiB", flush=True)
    floor = results[0][3]
    counts_header = {}
    with open(out / "counts.tsv") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition("=")
            counts_header[key] = json.loads(value)
    expression = "(tlen > 0 && flag.proper_pair) || !flag.paired"
    samtools_fragments = int(subprocess.run(["samtools", "view", "-c", *SAMTOOLS_FILTER, "-e", expression, str(bam)],
                                            capture_output=True, text=True).stdout)
    outcomes = counts_header["outcomes"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = [
        f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, commit {commit}.",
        f"BAM: {bam.name}, {n_records:,} records, {bam.stat().st_size / 2**20:.0f} MiB. "
        f"Median of {args.repeats} runs; memory is peak RSS.",
        f"pysam {pysam.__version__} (HAVE_LIBDEFLATE={pysam.config.HAVE_LIBDEFLATE}); "
        f"{tool_version(['samtools', '--version'])}; {tool_version(['mosdepth', '--version'])}.",
        "",
        "| tool | threads | mode | relative time | run-time (s) | memory (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {name} | {threads} | {mode} | {seconds / floor:.2f} | {seconds:.2f} | {memory:.0f} |"
              for name, threads, mode, seconds, memory in results]
    lines += ["", f"Agreement: her2cnv counted {outcomes['fragments_counted']:,} fragments in bins and "
              f"{outcomes['outside_bins']:,} outside them; `samtools view -c -q 20 -F 0xF04 -e '{expression}'` "
              f"counts {samtools_fragments:,} fragment-starting records "
              f"({'equal' if outcomes['fragments_counted'] + outcomes['outside_bins'] == samtools_fragments else 'DIFFERENT'})."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
