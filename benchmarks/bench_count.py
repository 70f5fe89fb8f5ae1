#!/usr/bin/env python3
"""Time and measure ``her2cnv count`` against samtools and mosdepth on the same BAM, in one run.

The threads column counts the threads that read or inflate: ``her2cnv count --threads N`` reads an
indexed BAM with N + 1 threads over regions (at most one per core), each with its own file handle
(the main thread only waits), and an unindexed one (a symbolic link to the BAM, which hides its .bai) with N BGZF
decompression threads beside the one reader; samtools ``-@ N`` and mosdepth ``-t N`` add N
decompression threads to the reading thread.
Each command runs ``--repeats`` times (default 3), the commands taking turns so that
other load on the machine spreads over all of them; the table reports the median
wall time, the ratio to single-threaded ``samtools view -c`` (the floor: decompress
and decode every record) and the peak resident memory of the command, read by GNU
time. With no ``--bam``, a BAM of about ``--records`` records is simulated first
with ``her2cnv simulate``.

``her2cnv`` is the console script installed beside the Python running this file (as in a
virtual environment; a pyenv shim on PATH would add ~0.1 s of bash to every run).
``--deflate-python`` adds rows for another Python whose pysam was built against libdeflate
(README, "Benchmark"). The simulated genome is chr17-chr22; the memory target is for
genome-wide bins, so one row counts the same records in a copy of the BAM whose header
lists every GRCh38 contig, into GRCh38's genome-wide 10 kb bins (~303,000).

Usage: python benchmarks/bench_count.py [--bam X.bam] [--records 5500000] [--deflate-python PATH]
       [--out benchmarks/results/count.md]
Needs samtools, mosdepth and GNU time (Debian: apt-get install samtools mosdepth time).
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
import tempfile
import time
from pathlib import Path

import numpy as np
import pysam

from her2cnv import bins as her2cnv_bins
from her2cnv import io as her2cnv_io

SAMTOOLS_FILTER = ["-q", "20", "-F", "0xF04"]


def regions(extra_threads: int) -> tuple[int, str]:
    """(threads column, mode) of ``her2cnv count --threads N`` on an indexed BAM: N + 1 readers, at most one a core."""
    from her2cnv.counts import available_cores

    readers = min(extra_threads + 1, available_cores())
    capped = f" (of {extra_threads + 1}: one per core)" if readers < extra_threads + 1 else ""
    return readers, f"10 kb bins, {readers} readers over regions{capped}"


HER2CNV = str(Path(sys.executable).parent / "her2cnv")


def run_measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of ``command``.

    GNU time reads the peak RSS: a child of this Python process would count this process's memory too,
    as Linux keeps a process's peak RSS across exec (the old numbers for samtools, 21 MiB, were pysam's).
    """
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        run = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - start
        if run.returncode != 0:
            sys.exit(f"benchmark: command failed: {' '.join(command)}\n{run.stderr}")
        return elapsed, int(report.read().split()[-1]) / 1024


def simulate_bam(directory: Path, records: int) -> Path:
    """A low-pass WGS BAM with about ``records`` records from the her2cnv simulator."""
    reference = directory / "reference.fa"
    bam = directory / "bench.bam"
    if not bam.exists():
        if not reference.exists():
            subprocess.run([HER2CNV, "simulate", "reference", "-o", str(reference), "--scale", "1.0",
                            "--contigs", "chr17,chr18,chr19,chr20,chr21,chr22", "--seed", "11"], check=True)
        genome = sum(pysam.FastaFile(str(reference)).lengths)
        depth = records * 100 / genome  # 100 bp reads, both mates counted
        subprocess.run([HER2CNV, "simulate", "sample", "--reference", str(reference), "-o", str(bam),
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
        subprocess.run([HER2CNV, "bins", "--fasta", str(reference), "-o", str(bins), "--bin-size", str(bin_size)],
                       check=True)
        with open(bins) as source, open(bed, "w") as target:
            for line in source:
                if not line.startswith(("#", "chrom\t")):
                    target.write("\t".join(line.split("\t")[:3]) + "\n")
    return bins, bed


def genome_wide_inputs(directory: Path, bam: Path) -> tuple[Path, Path, int]:
    """``bam`` reheadered with every GRCh38 contig (the records keep their contigs, which come first),
    and GRCh38's genome-wide 10 kb bins with a constant GC (``count`` copies GC, it does not use it)."""
    assembly = her2cnv_io.load_assembly("GRCh38")
    bins_path = directory / "bins_grch38_10000.tsv"
    if not bins_path.exists():
        lengths = assembly.contig_lengths
        layout = her2cnv_bins.genome_layout(lengths, assembly, her2cnv_bins.default_contigs(lengths), 10_000)
        n = len(layout[0])
        bins = her2cnv_bins.make_bins(*layout, np.full(n, 0.4), np.zeros(n), assembly, lengths)
        her2cnv_io.write_bins(bins_path, bins, {"note": "bench_count.py: GRCh38 layout, constant GC"})
    output = bam.with_name(bam.stem + ".grch38.bam")
    if not output.exists():
        with pysam.AlignmentFile(str(bam)) as source:
            header = source.header.to_dict()
        present = {sq["SN"] for sq in header["SQ"]}
        header["SQ"] += [{"SN": c, "LN": n} for c, n in assembly.contig_lengths.items() if c not in present]
        sam_header = directory / "grch38_header.sam"
        sam_header.write_text(str(pysam.AlignmentHeader.from_dict(header)))
        with open(output, "wb") as handle:
            subprocess.run(["samtools", "reheader", str(sam_header), str(bam)], stdout=handle, check=True)
    n_bins = sum(1 for line in open(bins_path) if not line.startswith(("#", "chrom\t")))
    return output, bins_path, n_bins


def tool_version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, errors="replace").stdout.splitlines()[0]
    except (OSError, IndexError):
        return "not found"


def pysam_build(python: str) -> str:
    code = "import pysam; print(pysam.__version__, pysam.config.HAVE_LIBDEFLATE)"
    version, deflate = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return f"pysam {version} (HAVE_LIBDEFLATE={deflate})"


def byte_compile_her2cnv(python: str) -> None:
    """Write her2cnv's bytecode as ``pip install`` does. An editable install run with PYTHONDONTWRITEBYTECODE
    set (as on the development machine) would otherwise compile every module on every run, ~30 ms that no
    installed her2cnv spends."""
    script = "import compileall, pathlib, her2cnv; compileall.compile_dir(pathlib.Path(her2cnv.__file__).parent, quiet=1)"
    subprocess.run([python, "-c", script], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bam", type=Path, help="BAM to use (default: simulate one)")
    parser.add_argument("--reference", type=Path, help="its reference FASTA (default: the simulated one)")
    parser.add_argument("--records", type=int, default=5_500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--deflate-python", type=Path,
                        help="a Python with her2cnv and a pysam built against libdeflate: adds its rows")
    parser.add_argument("--work", type=Path, default=Path(__file__).parent / "work")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "count.md")
    args = parser.parse_args()
    for tool in ("samtools", "mosdepth", "/usr/bin/time"):
        if shutil.which(tool) is None:
            sys.exit(f"benchmark: {tool} is not found")
    if not Path(HER2CNV).exists():
        sys.exit(f"benchmark: {HER2CNV} does not exist (install her2cnv into this Python)")
    deflate_her2cnv = args.deflate_python and str(args.deflate_python.parent / "her2cnv")
    if deflate_her2cnv and not Path(deflate_her2cnv).exists():
        sys.exit(f"benchmark: {deflate_her2cnv} does not exist (install her2cnv into {args.deflate_python})")
    args.work.mkdir(parents=True, exist_ok=True)
    bam = args.bam or with_sequences(simulate_bam(args.work, args.records))
    reference = args.reference or args.work / "reference.fa"
    n_records = int(subprocess.run(["samtools", "view", "-c", str(bam)], capture_output=True, text=True).stdout)
    bins_10k, bed_10k = make_bins(args.work, reference, 10_000)
    bins_100k, _ = make_bins(args.work, reference, 100_000)
    genome_wide_bam, bins_genome_wide, n_genome_wide = genome_wide_inputs(args.work, bam)
    out = args.work / "out"
    out.mkdir(exist_ok=True)
    unindexed = out / "unindexed.bam"  # htslib looks for unindexed.bam.bai, which is not there
    if unindexed.is_symlink() or unindexed.exists():
        unindexed.unlink()
    unindexed.symlink_to(bam.resolve())
    pysam_view = ["-c", "import pysam, sys; pysam.view('-c', '-q', '20', '-F', '0xF04', sys.argv[1])", str(bam)]

    def her2cnv(output: str, bins: Path, *options: str, source: Path = bam, executable: str = HER2CNV) -> list[str]:
        return [executable, "count", str(source), "--quiet", "-o", str(out / output), "--bins", str(bins), *options]

    commands = [
        ("samtools view -c (filters)", 1, "count records", ["samtools", "view", "-c", *SAMTOOLS_FILTER, str(bam)]),
        ("samtools view -c (filters)", 2, "count records", ["samtools", "view", "-c", "-@", "1", *SAMTOOLS_FILTER, str(bam)]),
        ("pysam's samtools view -c (zlib htslib)", 1, "count records", [sys.executable, *pysam_view]),
        ("her2cnv count", 1, "100 kb + locus bins", her2cnv("counts_100k.tsv", bins_100k)),
        ("her2cnv count", 1, "10 kb bins", her2cnv("counts.tsv", bins_10k)),
        ("her2cnv count --threads 1", *regions(1), her2cnv("threads1.counts.tsv", bins_10k, "--threads", "1")),
        ("her2cnv count --threads 2", *regions(2), her2cnv("threads2.counts.tsv", bins_10k, "--threads", "2")),
        ("her2cnv count --threads 2", 3, "10 kb bins, no index: 2 BGZF decompression threads",
         her2cnv("unindexed.counts.tsv", bins_10k, "--threads", "2", source=unindexed)),
        ("her2cnv count", 1, f"10 kb bins, GRCh38 genome-wide ({n_genome_wide:,})",
         her2cnv("genome_wide.counts.tsv", bins_genome_wide, source=genome_wide_bam)),
    ]
    if deflate_her2cnv:
        commands += [
            ("pysam's samtools view -c (libdeflate htslib)", 1, "count records", [str(args.deflate_python), *pysam_view]),
            ("her2cnv count (libdeflate pysam)", 1, "10 kb bins",
             her2cnv("deflate.counts.tsv", bins_10k, executable=deflate_her2cnv)),
            ("her2cnv count --threads 2 (libdeflate pysam)", *regions(2),
             her2cnv("deflate_threads2.counts.tsv", bins_10k, "--threads", "2", executable=deflate_her2cnv)),
        ]
    commands += [
        ("mosdepth -n --fast-mode --by", 1, "10 kb bins", ["mosdepth", "-n", "--fast-mode", "-Q", "20", "-F", "3844",
                                                           "--by", str(bed_10k), str(out / "mosdepth"), str(bam)]),
        ("mosdepth -n --fast-mode --by", 2, "10 kb bins", ["mosdepth", "-n", "--fast-mode", "-t", "1", "-Q", "20", "-F",
                                                           "3844", "--by", str(bed_10k), str(out / "mosdepth"), str(bam)]),
        ("samtools bedcov -c", 1, "10 kb bins", ["samtools", "bedcov", "-c", "-Q", "20", str(bed_10k), str(bam)]),
    ]
    for python in filter(None, (sys.executable, args.deflate_python)):
        byte_compile_her2cnv(str(python))
    runs = {i: [] for i in range(len(commands))}
    for _ in range(args.repeats):  # the commands take turns: a burst of other load hits them all alike
        for i, (_, _, _, command) in enumerate(commands):
            runs[i].append(run_measured(command))
    results = []
    for i, (name, threads, mode, _) in enumerate(commands):
        results.append((name, threads, mode, statistics.median(r[0] for r in runs[i]), max(r[1] for r in runs[i])))
        print(f"{name:44s} threads={threads} {mode:40s} {results[-1][3]:7.2f} s {results[-1][4]:7.1f} MiB", flush=True)
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
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                      cwd=Path(__file__).parent).stdout.strip():
        commit += " with uncommitted changes"
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = [
        f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, commit {commit}.",
        f"BAM: {bam.name}, {n_records:,} records, {bam.stat().st_size / 2**20:.0f} MiB. "
        f"Median of {args.repeats} runs; memory is peak RSS.",
        f"{pysam_build(sys.executable)}"
        + (f"; libdeflate rows: {pysam_build(str(args.deflate_python))}" if deflate_her2cnv else "")
        + f"; {tool_version(['samtools', '--version'])}; {tool_version(['mosdepth', '--version'])}.",
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
    tables = ["counts.tsv", "threads1.counts.tsv", "threads2.counts.tsv", "unindexed.counts.tsv"]
    tables += ["deflate.counts.tsv", "deflate_threads2.counts.tsv"] if deflate_her2cnv else []
    differing = [name for name in tables[1:] if without_provenance(out / name) != without_provenance(out / tables[0])]
    lines += [f"The 10 kb counts tables of the her2cnv rows ({', '.join(tables)}) are "
              + ("identical apart from their provenance line." if not differing else
                 f"DIFFERENT: {', '.join(differing)} differ from {tables[0]}.")]
    lines += ["", *targets(results)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def without_provenance(path: Path) -> list[str]:
    """A counts table's lines without the provenance line, which records the command's options."""
    with open(path) as handle:
        return [line for line in handle if not line.startswith("#provenance=")]


def targets(results) -> list[str]:
    """The issue's four targets, each against the rows it names."""
    seconds = {(name, threads, mode): s for name, threads, mode, s, _ in results}
    floor = seconds["samtools view -c (filters)", 1, "count records"]
    mosdepth = seconds["mosdepth -n --fast-mode --by", 1, "10 kb bins"]
    mosdepth_fastest = min(s for (name, _, _), s in seconds.items() if name.startswith("mosdepth"))
    lines = ["Targets, against single-threaded `samtools view -c`:", ""]
    for label, threaded in (("her2cnv count", "her2cnv count --threads 2"),
                            ("her2cnv count (libdeflate pysam)", "her2cnv count --threads 2 (libdeflate pysam)")):
        if (label, 1, "10 kb bins") not in seconds:
            continue
        one, three = seconds[label, 1, "10 kb bins"], seconds[(threaded, *regions(2))]
        lines.append(f"- {label}: single-threaded {one / floor:.2f}x (target <= 2x: {'met' if one / floor <= 2 else 'missed'}); "
                     f"`--threads 2` {three / floor:.2f}x (target <= 1.2x: {'met' if three / floor <= 1.2 else 'missed'}); "
                     f"single-threaded mosdepth takes {mosdepth / one:.1f}x as long (target >= 3x: "
                     f"{'met' if mosdepth / one >= 3 else 'missed'}; fastest against fastest "
                     f"{mosdepth_fastest / min(one, three):.1f}x).")
    for name, _, mode, _, mib in results:
        if name == "her2cnv count" and "genome-wide" in mode:
            lines.append(f"- Peak memory with {mode} bins: {mib:.0f} MiB = {mib * 2**20 / 1e6:.0f} MB "
                         f"(target <= 150 MB: {'met' if mib * 2**20 / 1e6 <= 150 else 'missed'}).")
    return lines


if __name__ == "__main__":
    main()
