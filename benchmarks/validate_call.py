#!/usr/bin/env python3
"""Validate ``her2cnv call`` on a grid of simulated plasma samples with a known truth.

For every cell of the grid (mode x tumour fraction x ERBB2 tumour copy number x
chr17q arm gain x seed) one sample is simulated with ``her2cnv simulate sample
--bins``, which writes the counts table that ``her2cnv count`` makes of the simulated
BAM without writing the BAM (tests/test_simulate.py checks the two are equal), and
called with ``her2cnv call`` against a panel of normals built from normals simulated
at the same depth; the call is compared with the truth. The contigs are full-size
(``--scale 1``), so tumour-fraction fits see as many reads per arm as in real data.
Two worker processes run samples in parallel, each calling the CLI
in-process through ``her2cnv.cli.main``.

Every tumour in the main grid carries the colorectal background events of
``--preset crc_typical`` (+8q, +13, +20q, -18): ERBB2-amplified colorectal cancers
are chromosomally unstable, and these arm-level events are what the tumour-fraction
fit measures. A small extra set WITHOUT them (a flat genome apart from ERBB2) shows
what happens when the tumour fraction cannot be estimated.

Tumour fraction 0 means no tumour DNA in the plasma, so the ERBB2 copy number and the
17q gain are invisible: TF 0 samples are simulated once per mode (``--tf0-seeds``
replicates with the full tumour presets at TF 0), not crossed with CN and arm gain.

Modes: low-pass WGS (``--wgs-depth``, genome bins) and capture panel (a targets BED
built for the simulated contig lengths like reference/panels/example_erbb2_panel:
500 bp targets every 5 kb over the 17q12 amplicon genes, one 500 bp backbone target
per Mb elsewhere; on-target ``--panel-depth`` unique, off-target ``--off-target-depth``,
target bins plus 100 kb off-target bins).

Caching: the reference, bins, panel BED, normals' counts and every sample's counts live
in ``--workdir`` (default benchmarks/work/validation, git-ignored); a rerun rebuilds the
panels of normals (seconds) and re-calls the cached counts, so changes to normalisation,
the panel or the caller (normalize.py, pon.py, call.py, purity.py, thresholds) are quick
to re-validate. The cache key covers the simulation parameters and
the her2cnv version, not the code: after changing the simulator, counter or bins, run with
``--fresh`` (deletes the work folder first). The report says when the cache was made.

Outputs: ``--out``/validation.tsv (one row per sample, sorted, deterministic) and
``--out``/validation.md (tables). ``--quick`` runs a much smaller grid (one seed, fewer
cells, 8 normals) for smoke tests and writes to WORKDIR/quick-results unless ``--out``
is given.

Usage: python benchmarks/validate_call.py [--quick] [--fresh] [--seeds 3] [--tf 0,0.02,...] ...
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = REPO / "benchmarks" / "work" / "validation"
DEFAULT_OUT = REPO / "benchmarks" / "results"
HIGH = 8.0  # truth: high-level amplification if tumour CN >= 8 (thresholds.toml high_level_copy_number)
STATUS_CODES = {"high_level_amplification": "H", "low_level_gain": "L", "not_detected": "N"}
INDETERMINATE_CODES = {  # reason text (her2cnv/call.py classify) -> code, first match wins
    "QC failed": "Q",
    "under another ploidy reading": "P",
    "cannot be established": "T",
    "too uncertain to call": "S",
    "on top of the arm gain": "B",
    "too little tumour DNA": "U",
    "cannot be excluded": "D",
}
LEGEND = ("H high_level_amplification; L low_level_gain; N not_detected; indeterminate because: "
          "S tumour CN too uncertain (estimate >= 8 but under 6 copies at z 3, or < 8 with CI reaching 8), T focal gain but TF not detected (and plasma CI low < 8), "
          "B gain with a broad 17q gain and a focal high-level amplicon not excluded, "
          "P the status the reported reading gives (low-level, not detected or high-level) would not hold under "
          "another ploidy reading of the profile, "
          "U no significant gain and TF not detected, D no significant gain but LOD > 8 (TF detected), Q QC failed; "
          "E error")
SENSITIVITY_BINS = [(0.0, 0.25), (0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, math.inf)]
SENSITIVITY_TARGET = {"panel": 0.5, "wgs": 1.0}  # TF x (CN - 2) at and above which sensitivity must be >= 95%
# Why full-size contigs: the tumour-fraction fit reads the crc_typical arm events (8q, 13, 18, 20q); the precision
# of an arm's level grows with the reads on it, so contigs scaled down (earlier runs: x0.2, 214 Mb) give ~sqrt(5)
# wider arm levels than a real genome at the same depth and overstate the detection limit. Counting straight from
# the simulated records (simulate sample --bins) makes full size affordable.
SCALE_NOTE = ("Contigs at full GRCh38 length: the arm-level events that the tumour-fraction fit measures carry as "
              "many reads as in a real genome at this depth. Earlier runs used contigs scaled to 20% (214 Mb), "
              "where each arm had a fifth of the reads.")
# sources whose change invalidates cached simulations and counts
CACHE_SOURCES = ["her2cnv/simulate.py", "her2cnv/cli/simulate.py", "her2cnv/counts.py", "her2cnv/bins.py",
                 "her2cnv/cli/bins.py"]


# ---------------------------------------------------------------- options

def parse_list(kind):
    def parse(text):
        return [kind(x) for x in text.split(",") if x.strip()]
    return parse


def parse_bools(text):
    values = []
    for x in text.split(","):
        x = x.strip().lower()
        if x in ("no", "false", "0", "without"):
            values.append(False)
        elif x in ("yes", "true", "1", "with"):
            values.append(True)
        elif x:
            raise argparse.ArgumentTypeError(f"arm gain values are yes/no, got {x!r}")
    return values


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    grid = p.add_argument_group("grid")
    grid.add_argument("--tf", type=parse_list(float), default="0,0.02,0.05,0.10,0.20,0.30",
                      help="tumour fractions (comma-separated)")
    grid.add_argument("--cn", type=parse_list(float), default="2,4,6,8,12,20,40",
                      help="ERBB2 tumour copy numbers (2 = no ERBB2 event)")
    grid.add_argument("--arm-gain", type=parse_bools, default="no,yes",
                      help="with/without a chr17q arm gain (CN 3): no,yes")
    grid.add_argument("--modes", type=parse_list(str), default="wgs,panel", help="wgs and/or panel")
    grid.add_argument("--seeds", type=int, default=3, help="replicates per grid cell")
    grid.add_argument("--tf0-seeds", type=int, default=20,
                      help="replicates of the TF 0 cell per mode (not crossed with CN and arm gain)")
    grid.add_argument("--flat-tf", type=parse_list(float), default="0.10,0.30",
                      help="tumour fractions of the samples without crc_typical (flat genome apart from ERBB2)")
    grid.add_argument("--flat-cn", type=parse_list(float), default="8,20,40",
                      help="ERBB2 tumour copy numbers of the flat-genome samples")
    grid.add_argument("--flat-seeds", type=int, default=1, help="replicates per flat-genome cell")
    grid.add_argument("--beside-tf", type=parse_list(float), default="0.05,0.10",
                      help="tumour fractions of the samples with an amplicon beside ERBB2 (ERBB2 itself at CN 2)")
    grid.add_argument("--beside-cn", type=parse_list(float), default="20,60",
                      help="copy numbers of the amplicon beside ERBB2 (CDK12 to PGAP3, ending 900 bp before ERBB2)")
    grid.add_argument("--beside-seeds", type=int, default=2, help="replicates per beside-ERBB2 cell")
    grid.add_argument("--polyploid-tf", type=parse_list(float), default="0.10,0.30",
                      help="tumour fractions of the polyploid tumours (each called twice: own fit, true TF given)")
    grid.add_argument("--polyploid-cn", type=parse_list(float), default="6,12,20",
                      help="ERBB2 tumour copy numbers of the polyploid tumours")
    grid.add_argument("--polyploid-seeds", type=int, default=2, help="replicates per polyploid cell")
    sim = p.add_argument_group("simulation")
    sim.add_argument("--contigs", default="chr1,chr8,chr13,chr17,chr18,chr20", help="reference contigs")
    sim.add_argument("--scale", type=float, default=1.0, help="length factor of contigs other than chr17")
    sim.add_argument("--reference-seed", type=int, default=7, help="seed of the synthetic reference")
    sim.add_argument("--wgs-depth", type=float, default=0.5, help="low-pass WGS depth")
    sim.add_argument("--amplicon-size", type=int, default=300_000, help="ERBB2 amplicon size (bp)")
    sim.add_argument("--panel-depth", type=float, default=500.0, help="panel on-target depth (unique)")
    sim.add_argument("--off-target-depth", type=float, default=0.2, help="panel off-target depth")
    sim.add_argument("--off-target-size", type=int, default=100_000, help="panel off-target bin size")
    sim.add_argument("--normals", type=int, default=15, help="normals per panel of normals")
    run = p.add_argument_group("run")
    run.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    run.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="cache folder")
    run.add_argument("--out", type=Path, help=f"results folder (default {DEFAULT_OUT.relative_to(REPO)}; "
                                              "--quick: WORKDIR/quick-results)")
    run.add_argument("--fresh", action="store_true", help="delete the work folder first (rebuild everything)")
    run.add_argument("--quick", action="store_true",
                     help="smoke test: tf 0,0.05,0.2; cn 2,8,20; arm gain no (+ yes at cn 2); 1 seed; "
                          "4 TF-0, 2 flat and 1 beside-ERBB2 samples per mode; 8 normals")
    return p


def apply_quick(args):
    args.tf, args.cn, args.seeds, args.tf0_seeds = [0, 0.05, 0.20], [2, 8, 20], 1, 4
    args.arm_gain = [False]  # plus one arm-gain-only cell per TF, added in build_grid
    args.flat_tf, args.flat_cn, args.flat_seeds, args.normals = [0.30], [8, 40], 1, 8
    args.beside_tf, args.beside_cn, args.beside_seeds = [0.10], [60], 1
    args.polyploid_tf, args.polyploid_cn, args.polyploid_seeds = [0.30], [12], 1
    args.quick_arm_cells = True
    return args


# ---------------------------------------------------------------- samples

@dataclass
class Spec:
    """One simulated sample and how to make and call it."""

    name: str
    group: str  # "grid" (with crc_typical), "flat" (without), "tf0", "beside" (an amplicon next to ERBB2), "polyploid"
    mode: str
    tf: float
    cn: float
    arm_gain: bool
    crc: bool
    replicate: int
    seed: int
    simulate_args: list = field(default_factory=list)
    counts: str = ""
    truth: str = ""
    pon: str = ""
    bins: str = ""
    calls: str = ""
    genome: str = ""  # polyploid: a key of POLYPLOID_GENOMES
    given_tf_calls: str = ""  # polyploid: where it is called again, given its true tumour fraction


def sample_seed(name: str) -> int:
    return 1_000_000 + zlib.crc32(name.encode()) % 1_000_000_000


def fmt(x: float) -> str:
    return f"{x:g}"


# An amplicon beside ERBB2 that does not contain it: CDK12 to the first half of PGAP3, ending 900 bp before
# ERBB2 (GRCh38; the audit of 2026-11-22 found it called high-level through the amplicon core's bins).
BESIDE_ERBB2 = "chr17:39400001-39687000"


# Polyploid tumours (the audit of 2026-11-22): every contig at `baseline` copies, crc_typical's arm events as
# steps of `step` copies from it (+8q, +13, +20q, -18), and the 300 kb ERBB2 amplicon at its CN.
POLYPLOID_GENOMES = {"doubled": (4, 2), "tetraploid": (4, 1), "triploid": (3, 1)}


def polyploid_events(genome: str, cn: float, reference_fai: Path, amplicon_size: int) -> list[str]:
    from her2cnv import io, simulate

    assembly = io.load_assembly("GRCh38")
    baseline, step = POLYPLOID_GENOMES[genome]
    lengths = dict(line.split("\t")[:2] for line in reference_fai.read_text().splitlines())
    events = [f"{contig}:1-{length}:{baseline}" for contig, length in lengths.items()]
    arms = assembly.arm_boundaries
    events += [f"chr8:{arms['chr8'] + 1}-{lengths['chr8']}:{baseline + step}",
               f"chr13:1-{lengths['chr13']}:{baseline + step}", f"chr18:1-{lengths['chr18']}:{baseline - step}",
               f"chr20:{arms['chr20'] + 1}-{lengths['chr20']}:{baseline + step}"]
    chrom, start, end = simulate.erbb2_amplicon(assembly, amplicon_size)
    events.append(f"{chrom}:{start + 1}-{end}:{fmt(cn)}")
    return [x for event in events for x in ("--event", event)]


def cache_key(name: str, simulate_args: list, layout: dict) -> str:
    """A simulated sample's cache key: its name, simulation arguments and layout, with paths taken relative to
    the layout's directory, so that a cache made in another checkout (a worktree's) and moved here still matches."""
    local = [a.replace(str(layout["dir"]), "") if isinstance(a, str) else a for a in simulate_args]
    return hashlib.sha256(json.dumps([name, local, layout["key"]]).encode()).hexdigest()[:10]


def simulation_args(mode: str, tf: float, cn: float, arm: bool, crc: bool, args, layout,
                    beside_cn: float | None = None) -> list[str]:
    presets = (["crc_typical"] if crc else []) + (["arm_gain_17q"] if arm else [])
    extra = [] if beside_cn is None else ["--event", f"{BESIDE_ERBB2}:{fmt(beside_cn)}"]
    if cn != 2:
        presets.append("erbb2_focal")  # last, so the amplicon keeps its CN inside a 17q gain
        extra = ["--erbb2-copy-number", fmt(cn), "--amplicon-size", str(args.amplicon_size)]
    presets = presets or ["none"]  # without any preset the simulator defaults to erbb2_focal at CN 20
    command = ["--tumor-fraction", fmt(tf)] + [x for preset in presets for x in ("--preset", preset)] + extra
    if mode == "wgs":
        command += ["--depth", fmt(args.wgs_depth)]
    else:
        command += ["--panel", str(layout["panel_bed"]), "--panel-depth", fmt(args.panel_depth),
                    "--off-target-depth", fmt(args.off_target_depth)]
    return command


def build_grid(args, layouts) -> list[Spec]:
    specs = []

    def add(group, mode, tf, cn, arm, crc, replicate, beside_cn=None, genome=""):
        arm_text = "arm" if arm else "noarm"
        if group == "tf0":
            name = f"{mode}-tf0-r{replicate}"
        elif group == "flat":
            name = f"flat-{mode}-tf{fmt(tf)}-cn{fmt(cn)}-r{replicate}"
        elif group == "beside":
            name = f"beside-{mode}-tf{fmt(tf)}-amp{fmt(beside_cn)}-r{replicate}"
        elif group == "polyploid":
            name = f"polyploid-{mode}-{genome}-tf{fmt(tf)}-cn{fmt(cn)}-r{replicate}"
        else:
            name = f"{mode}-tf{fmt(tf)}-cn{fmt(cn)}-{arm_text}-r{replicate}"
        layout = layouts[mode]
        sim = simulation_args(mode, tf, cn, arm, crc, args, layout, beside_cn)
        if group == "polyploid":
            sim = simulation_args(mode, tf, 2, False, False, args, layout)
            sim = [x for x in sim if x not in ("--preset", "none")] + ["--preset", "none"] + polyploid_events(
                genome, cn, layout["dir"].parent / "reference.fa.fai", args.amplicon_size)
        key = cache_key(name, sim, layout)
        specs.append(Spec(name=name, group=group, mode=mode, tf=tf, cn=cn, arm_gain=arm, crc=crc,
                          replicate=replicate, seed=sample_seed(name), simulate_args=sim,
                          counts=str(layout["dir"] / "counts" / f"{name}.{key}.counts.tsv"),
                          truth=str(layout["dir"] / "counts" / f"{name}.{key}.truth.json"),
                          pon=str(layout["pon"]), bins=str(layout["bins"]),
                          calls=str(layout["calls"]), genome=genome,
                          given_tf_calls=str(layout["given_tf_calls"]) if genome else ""))

    for mode in args.modes:
        for tf in args.tf:
            if tf == 0:
                continue
            for cn in args.cn:
                for arm in args.arm_gain:
                    for r in range(1, args.seeds + 1):
                        add("grid", mode, tf, cn, arm, True, r)
            if getattr(args, "quick_arm_cells", False):
                add("grid", mode, tf, 2, True, True, 1)
        if 0 in args.tf:
            for r in range(1, args.tf0_seeds + 1):
                # TF 0: the tumour presets are given but no tumour DNA is in the plasma
                add("tf0", mode, 0.0, max(args.cn), True, True, r)
        for tf in args.flat_tf:
            for cn in args.flat_cn:
                for r in range(1, args.flat_seeds + 1):
                    add("flat", mode, tf, cn, False, False, r)
        for tf in args.beside_tf:
            for amplicon_cn in args.beside_cn:
                for r in range(1, args.beside_seeds + 1):
                    add("beside", mode, tf, 2, False, True, r, amplicon_cn)
        for genome, tf, cn, r in itertools.product(POLYPLOID_GENOMES, args.polyploid_tf, args.polyploid_cn,
                                                   range(1, args.polyploid_seeds + 1)):
            add("polyploid", mode, tf, cn, False, True, r, genome=genome)
    return specs


def cli(*arguments) -> None:
    """Run one her2cnv command in-process; raise with its message on failure."""
    from her2cnv.cli import main
    import contextlib
    import io as _io

    stderr = _io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main([str(a) for a in arguments] + ["--quiet"])
    if status != 0:
        raise RuntimeError(f"her2cnv {arguments[0]} exited {status}: {stderr.getvalue().strip()[-500:]}")


def simulate_counts(name: str, seed: int, simulate_args: list, reference: str, bins: str, counts: str,
                    truth: str) -> None:
    """Simulate one sample straight into counts (``simulate sample --bins``: exactly what ``count`` makes of the
    simulated BAM, checked by tests/test_simulate.py); ``counts`` appears last, so its presence means done."""
    Path(counts).parent.mkdir(parents=True, exist_ok=True)
    partial = Path(counts).with_name(f"{name}.partial.counts.tsv")
    try:
        cli("simulate", "sample", "--reference", reference, "--bins", bins, "-o", partial, "--truth", truth,
            "--seed", seed, "--sample", name, *simulate_args)
        os.replace(partial, counts)
    finally:
        partial.unlink(missing_ok=True)


def run_spec(spec: Spec, reference: str) -> dict:
    """Simulate (unless cached), count and call one sample; return its record."""
    started = time.perf_counter()
    record = {"spec": asdict(spec)}
    try:
        if not Path(spec.counts).exists():
            simulate_counts(spec.name, spec.seed, spec.simulate_args, reference, spec.bins, spec.counts, spec.truth)
            record["simulated"] = True
        cli("call", spec.counts, "--pon", spec.pon, "-o", spec.calls, "--no-plots")
        record["call"] = json.loads((Path(spec.calls) / f"{spec.name}.call.json").read_text())
        if spec.given_tf_calls:
            cli("call", spec.counts, "--pon", spec.pon, "-o", spec.given_tf_calls, "--no-plots", "--tumor-fraction",
                spec.tf)
            record["call_given_tf"] = json.loads((Path(spec.given_tf_calls) / f"{spec.name}.call.json").read_text())
    except Exception as error:  # recorded as status "error" and listed in the report
        record["error"] = f"{type(error).__name__}: {error}"
    record["seconds"] = time.perf_counter() - started
    return record


def make_normal(name, seed, simulate_args, reference, bins, counts):
    if not Path(counts).exists():
        simulate_counts(name, seed, simulate_args, reference, bins, counts, str(Path(counts).with_suffix(".truth.json")))
    return counts


def make_pon(counts: list[str], pon: str) -> str:
    """Built every run (2 s) from the cached normals' counts, so it always matches the code being validated."""
    partial = Path(pon).with_name(Path(pon).stem + ".partial.npz")
    cli("pon", *counts, "-o", partial)
    os.replace(partial, pon)
    return pon


# ---------------------------------------------------------------- setup (reference, bins, panel, normals, PoN)

def source_fingerprint() -> str:
    digest = hashlib.sha256()
    for relative in CACHE_SOURCES:
        path = REPO / relative
        digest.update(relative.encode() + (path.read_bytes() if path.exists() else b"-"))
    return digest.hexdigest()[:10]


def panel_bed(reference_fai: Path, output: Path) -> int:
    """Targets for the simulated genome, built like reference/panels/example_erbb2_panel.grch38.bed.

    500 bp targets every 5 kb from each amplicon gene's start to its end (chr17 is at full
    length, so these are the example panel's gene targets exactly), and one 500 bp backbone
    target at every whole Mb (1 Mb .. length - 1 Mb) of every contig, leaving out chr17
    backbone targets within 1 Mb of the amplicon genes (as the example panel does).
    """
    from her2cnv import io

    assembly = io.load_assembly("GRCh38")
    lengths = {}
    for line in reference_fai.read_text().splitlines():
        contig, length = line.split("\t")[:2]
        lengths[contig] = int(length)
    genes_start, genes_end = int(assembly.gene_starts.min()), int(assembly.gene_ends.max())
    rows = []
    for contig, length in lengths.items():
        for k in range(1, length // 1_000_000):
            start = k * 1_000_000
            if contig == "chr17" and genes_start - 1_000_000 < start + 500 and start < genes_end + 1_000_000:
                continue
            rows.append((contig, start, start + 500, "backbone"))
        if contig == "chr17":
            for gene, gene_start, gene_end in zip(assembly.gene_names, assembly.gene_starts.tolist(),
                                                  assembly.gene_ends.tolist()):
                rows.extend((contig, s, s + 500, gene) for s in range(gene_start, gene_end, 5000))
    order = {c: i for i, c in enumerate(lengths)}
    rows.sort(key=lambda r: (order[r[0]], r[1], r[3]))
    text = ("# Synthetic capture panel for the simulated validation reference, built like\n"
            "# reference/panels/example_erbb2_panel.grch38.bed (benchmarks/validate_call.py).\n"
            + "".join(f"{c}\t{s}\t{e}\t{n}\n" for c, s, e, n in rows))
    output.write_text(text)
    return len(rows)


def setup(args, pool) -> tuple[Path, dict]:
    """Reference, bins, panel BED, normals and PoNs (cached); returns (reference, layouts)."""
    from her2cnv.version import __version__

    ref_key = hashlib.sha256(json.dumps([args.contigs, args.scale, args.reference_seed,
                                         __version__]).encode()).hexdigest()[:10]
    root = args.workdir / f"ref-{ref_key}"
    root.mkdir(parents=True, exist_ok=True)
    reference = root / "reference.fa"
    if not (root / "reference.fa.her2cnv.json").exists():
        log(f"simulating reference {reference}")
        cli("simulate", "reference", "-o", reference, "--contigs", args.contigs, "--scale", args.scale,
            "--seed", args.reference_seed)
        (root / "cache.json").write_text(json.dumps({"created": time.strftime("%Y-%m-%d %H:%M"),
                                                     "commit": machine_info()["commit"],
                                                     "sources": source_fingerprint()}) + "\n")
    args.cache_info = json.loads((root / "cache.json").read_text()) if (root / "cache.json").exists() else {}
    if args.cache_info.get("sources") not in (None, source_fingerprint()):
        log("note: simulator/counter sources changed since this cache was made "
            f"({args.cache_info.get('created')}); use --fresh if the change affects simulated data or counts")
    layouts = {}
    for mode in args.modes:
        if mode == "wgs":
            directory = root / f"wgs-d{fmt(args.wgs_depth)}"
            key = ["wgs", args.wgs_depth]
        elif mode == "panel":
            directory = root / f"panel-t{fmt(args.panel_depth)}-o{fmt(args.off_target_depth)}-b{args.off_target_size}"
            key = ["panel", args.panel_depth, args.off_target_depth, args.off_target_size]
        else:
            sys.exit(f"validate_call: unknown mode {mode!r} (wgs, panel)")
        directory.mkdir(parents=True, exist_ok=True)
        layouts[mode] = {"dir": directory, "bins": directory / "bins.tsv", "key": [ref_key] + key,
                         "pon": directory / f"pon-n{args.normals}.npz", "calls": directory / "calls",
                         "given_tf_calls": directory / "calls-given-tf",
                         "panel_bed": directory / "panel.bed" if mode == "panel" else None}
    jobs = []
    for mode, layout in layouts.items():
        if layout["bins"].exists():
            continue
        if mode == "panel":
            n = panel_bed(Path(f"{reference}.fai"), layout["panel_bed"])
            log(f"panel BED: {n} targets -> {layout['panel_bed']}")
            command = ["bins", "--fasta", reference, "--targets", layout["panel_bed"],
                       "--off-target-size", args.off_target_size, "-o", layout["bins"]]
        else:
            command = ["bins", "--fasta", reference, "-o", layout["bins"]]
        jobs.append(pool.submit(cli, *command))
    for job in jobs:
        job.result()
    # normals, then one panel of normals per mode
    normal_jobs, normal_counts = [], defaultdict(list)
    for mode, layout in layouts.items():
        base = 500 if mode == "wgs" else 700  # normal seeds, distinct from sample seeds (>= 1,000,000)
        for i in range(1, args.normals + 1):
            name = f"N{i:02d}"
            sim = simulation_args(mode, 0.0, 2, False, False, args, layout)
            counts = layout["dir"] / "normals" / f"{name}.counts.tsv"
            normal_counts[mode].append(str(counts))
            if not counts.exists():
                normal_jobs.append(pool.submit(make_normal, name, base + i, sim, str(reference), str(layout["bins"]),
                                               str(counts)))
    if normal_jobs:
        log(f"simulating {len(normal_jobs)} normals")
        for job in as_completed(normal_jobs):
            job.result()
    pon_jobs = [pool.submit(make_pon, normal_counts[mode], str(layout["pon"])) for mode, layout in layouts.items()]
    for job in pon_jobs:
        job.result()
    return reference, layouts


# ---------------------------------------------------------------- records and tables

def status_code(status: str, reason: str) -> str:
    if status in STATUS_CODES:
        return STATUS_CODES[status]
    if status == "indeterminate":
        for text, code in INDETERMINATE_CODES.items():
            if text in reason:
                return code
        return "I"
    return "E"


def r4(x):
    return None if x is None else round(float(x), 4)


def erbb2_copy_number(spec: dict) -> float:
    """The tumour's true copy number at ERBB2: the amplicon's, else 3 under a 17q gain (the grid's CN 2)."""
    return 3.0 if spec["cn"] == 2 and spec["arm_gain"] else spec["cn"]


def flatten(result: dict) -> dict:
    spec = result["spec"]
    erbb2_cn = erbb2_copy_number(spec)
    row = {"group": spec["group"], "mode": spec["mode"], "tf": spec["tf"], "cn": spec["cn"], "erbb2_cn": erbb2_cn,
           "arm_gain": spec["arm_gain"], "crc_typical": spec["crc"], "replicate": spec["replicate"],
           "seed": spec["seed"], "sample": spec["name"],
           "expected_plasma_cn": round(2 + spec["tf"] * (erbb2_cn - 2), 4)}
    call = result.get("call")
    if call is None:
        row.update({"status": "error", "code": "E", "reason": result.get("error", "")})
        return row
    e, f, q = call["erbb2"], call["tumor_fraction"], call["qc"]
    pci = e.get("plasma_copy_number_ci95") or [None, None]
    tci = e.get("tumor_copy_number_ci95") or [None, None]
    fci = f.get("ci95") or [None, None]
    weighted = f.get("size_weighted") or {}
    row.update({
        "status": e["status"], "code": status_code(e["status"], e["reason"]),
        "plasma_cn": r4(e.get("plasma_copy_number")), "plasma_cn_lo": r4(pci[0]), "plasma_cn_hi": r4(pci[1]),
        "tumor_cn": r4(e.get("tumor_copy_number")), "tumor_cn_lo": r4(tci[0]), "tumor_cn_hi": r4(tci[1]),
        "tf_estimate": r4(f.get("estimate")), "tf_detected": f.get("detected"),
        "tf_lo": r4(fci[0]), "tf_hi": r4(fci[1]), "tf_detection_limit": r4(f.get("detection_limit")),
        "tf_fit_improvement": r4(f.get("fit_improvement")), "called_on": e.get("called_on"),
        "weighted_tf_estimate": r4(weighted.get("estimate")), "weighted_tf_detected": weighted.get("detected"),
        "weighted_tf_ceiling": r4(weighted.get("ceiling")),
        "weighted_tf_above_ceiling": weighted.get("above_ceiling"),
        "weighted_tf_fit_improvement": r4(weighted.get("fit_improvement")),
        "focal": e.get("focal"), "z": r4(e.get("z_score")), "null_z": r4(e.get("null_z_score")),
        "measured_on": e.get("measured_on"), "lod_cn": r4(e.get("limit_of_detection_copy_number")),
        "qc_pass": q.get("pass"), "noise_mapd": r4(q.get("noise_mapd")),
        "qc_reasons": "; ".join(q.get("reasons") or []), "reason": e["reason"],
    })
    if spec.get("genome"):
        row.update(polyploid_columns(spec, e, result.get("call_given_tf")))
    return row


def polyploid_columns(spec: dict, erbb2: dict, given: dict | None) -> dict:
    """A polyploid tumour's true reading (its tumour CN and fraction) and its call given the true fraction."""
    baseline, step = POLYPLOID_GENOMES[spec["genome"]]
    reading = next((r for r in erbb2.get("ploidy_readings") or []
                    if (r["baseline_copy_number"], r["copies_per_step"]) == (baseline, step)), {})
    columns = {"genome": spec["genome"], "reading_tumor_cn": r4(reading.get("tumor_copy_number")),
               "reading_tf": r4(reading.get("tumor_fraction"))}
    if given is not None:
        columns.update({"given_tf_status": given["erbb2"]["status"],
                        "given_tf_code": status_code(given["erbb2"]["status"], given["erbb2"]["reason"]),
                        "given_tf_tumor_cn": r4(given["erbb2"]["tumor_copy_number"])})
    return columns


COLUMNS = ["group", "mode", "tf", "cn", "erbb2_cn", "arm_gain", "crc_typical", "replicate", "seed", "sample",
           "expected_plasma_cn", "status", "code", "plasma_cn", "plasma_cn_lo", "plasma_cn_hi", "tumor_cn",
           "tumor_cn_lo", "tumor_cn_hi", "tf_estimate", "tf_detected", "tf_lo", "tf_hi", "tf_detection_limit",
           "tf_fit_improvement", "called_on", "weighted_tf_estimate", "weighted_tf_detected", "weighted_tf_ceiling",
           "weighted_tf_above_ceiling", "weighted_tf_fit_improvement", "focal", "z", "null_z", "measured_on", "lod_cn",
           "qc_pass", "noise_mapd", "qc_reasons", "reason", "genome", "reading_tumor_cn", "reading_tf",
           "given_tf_status", "given_tf_code", "given_tf_tumor_cn"]
GROUP_ORDER = {"tf0": 0, "grid": 1, "flat": 2, "beside": 3, "polyploid": 4}
MODE_ORDER = {"wgs": 0, "panel": 1}


def sort_key(row):
    return (MODE_ORDER.get(row["mode"], 9), GROUP_ORDER[row["group"]], row["tf"], row["cn"], row["arm_gain"],
            row["replicate"])


def tsv_value(value) -> str:
    if value is None:
        return "NA"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) and abs(value) < 1e6 else f"{value:.4f}".rstrip("0")
    return str(value).replace("\t", " ").replace("\n", " ")


def write_tsv(rows: list[dict], path: Path) -> None:
    lines = ["\t".join(COLUMNS)] + ["\t".join(tsv_value(row.get(c)) for c in COLUMNS) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def table(headers: list[str], rows: list[list]) -> str:
    def cell(x):
        if x is None:
            return "–"
        if isinstance(x, float):
            return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"
        return str(x)
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(out)


def pct(k: int, n: int) -> str:
    return "–" if n == 0 else f"{100 * k / n:.0f}% ({k}/{n})"


def is_high_truth(row) -> bool:
    return row["cn"] >= HIGH and row["tf"] > 0


def tf_within(row) -> bool:
    if not row.get("tf_detected") or row.get("tf_estimate") is None:
        return False
    error = abs(row["tf_estimate"] - row["tf"])
    return error <= 0.03 or error <= 0.2 * row["tf"]


def weighted_accepted(row) -> bool:
    """The size-weighted second look detected tumour DNA at a share below its ceiling (call.analyse)."""
    return bool(row.get("weighted_tf_detected")) and not row["weighted_tf_above_ceiling"]


def sensitivity_bin(x: float) -> str:
    for low, high in SENSITIVITY_BINS:
        if low <= x < high:
            return f"{low:g}–{high:g}" if high != math.inf else f">= {low:g}"
    return "?"


def by_cell(rows: list[dict]) -> list[str]:
    """One line per (mode, TF, CN, 17q gain): the status codes and the first sample's reason."""
    groups = defaultdict(list)
    for r in sorted(rows, key=sort_key):
        groups[(r["mode"], r["tf"], r["cn"], r["arm_gain"])].append(r)
    return [f"- {mode} TF {fmt(tf)} CN {fmt(cn)} 17q {'gain' if arm else 'none'}: "
            f"{''.join(r['code'] for r in chosen)} — e.g. {chosen[0]['reason']}"
            for (mode, tf, cn, arm), chosen in groups.items()]


def report(rows: list[dict], args, meta: dict) -> str:
    modes = [m for m in args.modes]
    beside = [r for r in rows if r["group"] == "beside"]
    polyploid = [r for r in rows if r["group"] == "polyploid"]
    rows = [r for r in rows if r["group"] not in ("beside", "polyploid")]  # the grid's tables and targets: the issue's
    grid = [r for r in rows if r["group"] == "grid"]
    tf0 = [r for r in rows if r["group"] == "tf0"]
    flat = [r for r in rows if r["group"] == "flat"]
    md = ["# her2cnv call validation on simulated plasma", ""]
    md += [f"her2cnv commit `{meta['commit']}`, {meta['date']}; machine: {meta['nproc']} CPUs ({meta['cpu']}), "
           f"Python {meta['python']}; {meta['workers']} worker processes; wall time {meta['wall']} "
           f"({meta['n_simulated']} samples simulated this run, {meta['n_called']} called); "
           f"{meta['full_run']}.", ""]
    md += ["Generated by `benchmarks/validate_call.py` " + ("`--quick` " if args.quick else "")
           + f"(command: `{meta['command']}`). Raw rows: `validation.tsv`. Simulated counts cached since "
           f"{meta['cache'].get('created', '?')} (commit {meta['cache'].get('commit', '?')}).", ""]
    summary_at = len(md)
    targets = []
    md += ["## Design", ""]
    md += [f"- Reference: `her2cnv simulate reference --contigs {args.contigs} --scale {args.scale:g} "
           f"--seed {args.reference_seed}` (chr17 at full GRCh38 length, other contigs x{args.scale:g}; "
           f"{meta['genome_mb']:.0f} Mb; median {meta['bins_per_arm']} usable 100 kb WGS bins per arm): the "
           "crc_typical arms (8q, 13, 18, 20q) plus diploid anchors (chr1, chr8p, chr17p, chr20p). " + SCALE_NOTE,
           f"- Low-pass WGS: `--depth {args.wgs_depth:g}`, {meta['n_bins']['wgs']} bins (100 kb genome, 10 kb over "
           f"the 17q12 locus); ERBB2 amplicon {args.amplicon_size / 1e3:g} kb (`--amplicon-size "
           f"{args.amplicon_size}` = chr17:39.6–39.9 Mb)." if "wgs" in modes else "",
           f"- Capture panel: {meta['panel_targets']} targets built for the simulated contig lengths like "
           "`reference/panels/example_erbb2_panel.grch38.bed` (500 bp every 5 kb over the amplicon genes CDK12..TOP2A, "
           "one 500 bp backbone target per Mb elsewhere); on-target "
           f"{args.panel_depth:g}x unique (`--panel-depth`), off-target {args.off_target_depth:g}x; "
           f"`her2cnv bins --targets --off-target-size {args.off_target_size}` → {meta['n_bins'].get('panel')} bins; "
           f"same {args.amplicon_size / 1e3:g} kb amplicon." if "panel" in modes else "",
           f"- Panel of normals per mode: {args.normals} normals (TF 0, `--preset none`, distinct seeds) at the "
           "same depth.",
           f"- Main grid: TF {', '.join(fmt(x) for x in args.tf if x > 0)} x ERBB2 tumour CN "
           f"{', '.join(fmt(x) for x in args.cn)} (CN 2 = no ERBB2 event) x 17q arm gain (CN 3) "
           f"{'/'.join('with' if a else 'without' for a in args.arm_gain)} x {args.seeds} seed(s), both modes. "
           "**Every tumour carries realistic colorectal background events (`--preset crc_typical`: +8q, +13, "
           "+20q, −18)** in addition to the ERBB2 and 17q events: ERBB2-amplified colorectal cancers are "
           "chromosomally unstable, and these arm-level events are what the caller fits the tumour fraction to.",
           f"- TF 0: {args.tf0_seeds} samples per mode (same tumour presets, no tumour DNA — CN and arm gain are "
           "invisible at TF 0, so TF 0 is not crossed with them).",
           f"- Flat-genome set (no crc_typical, ERBB2 event only): TF {', '.join(fmt(x) for x in args.flat_tf)} x "
           f"CN {', '.join(fmt(x) for x in args.flat_cn)} x {args.flat_seeds} seed(s) per mode.",
           "- Truth: high-level amplification iff tumour CN >= 8 and TF > 0; expected plasma CN = 2 + TF x (CN − 2).",
           ""]
    errors = [r for r in rows if r["status"] == "error"]
    if errors:
        md += [f"**{len(errors)} sample(s) failed** (status error):", ""]
        md += [f"- {r['sample']}: {r['reason']}" for r in errors[:20]] + [""]

    # ---- status counts
    md += ["## Status by cell", "", f"One letter per seed. {LEGEND}.", ""]
    cns = sorted({r["cn"] for r in grid})
    for mode in modes:
        body = []
        t0 = [r for r in tf0 if r["mode"] == mode]
        if t0:
            body.append(["0", "any", "".join(r["code"] for r in t0)] + [""] * (len(cns) - 1))
        for arm in args.arm_gain + ([True] if getattr(args, "quick_arm_cells", False) else []):
            for tf in sorted({r["tf"] for r in grid}):
                cells = []
                for cn in cns:
                    codes = "".join(r["code"] for r in grid if r["mode"] == mode and r["tf"] == tf
                                    and r["cn"] == cn and r["arm_gain"] == arm)
                    cells.append(codes or "")
                if any(cells):
                    body.append([fmt(tf), "yes" if arm else "no"] + cells)
        unique = []
        for b in body:
            if b not in unique:
                unique.append(b)
        md += [f"**{mode}**", "", table(["TF", "17q gain"] + [f"CN {fmt(c)}" for c in cns], unique), ""]
        totals = Counter(r["code"] for r in rows if r["mode"] == mode)
        md += ["All samples of this mode (incl. TF 0 and flat): "
               + ", ".join(f"{code} {n}" for code, n in sorted(totals.items())), ""]

    # ---- specificity
    negatives = [r for r in rows if r["tf"] == 0 or r["cn"] == 2]
    violations = [r for r in negatives if r["status"] == "high_level_amplification"]
    md += ["## Specificity", "",
           "No `high_level_amplification` on any TF 0 sample or any sample without an ERBB2 event (CN 2, with or "
           "without the 17q gain, incl. the flat set). Target: 0 violations.", ""]
    body = []
    for mode in modes:
        for label, pick in (("TF 0", lambda r: r["tf"] == 0),
                            ("CN 2, no 17q gain", lambda r: r["tf"] > 0 and r["cn"] == 2 and not r["arm_gain"]),
                            ("CN 2, 17q gain", lambda r: r["tf"] > 0 and r["cn"] == 2 and r["arm_gain"])):
            chosen = [r for r in negatives if r["mode"] == mode and pick(r)]
            codes = Counter(r["code"] for r in chosen)
            body.append([mode, label, len(chosen), sum(r["status"] == "high_level_amplification" for r in chosen),
                         ", ".join(f"{k} {v}" for k, v in sorted(codes.items()))])
    md += [table(["mode", "samples", "n", "high-level (violations)", "statuses"], body), ""]
    md += [f"Violations: {len(violations)}" + (":" if violations else "."), ""]
    targets.append(f"Specificity (no high-level call without an ERBB2 event, {len(negatives)} samples): "
                   f"{len(violations)} violations — {'met' if not violations else 'MISSED'}.")
    md += [f"- {r['sample']}: {r['reason']}" for r in violations] + ([""] if violations else [])
    false_high = [r for r in grid if r["tf"] > 0 and 2 < r["cn"] < HIGH and r["status"] == "high_level_amplification"]
    md += [f"Also: high-level calls on true low-level gains (CN 4/6): {len(false_high)}"
           + (" — " + ", ".join(r["sample"] for r in false_high) if false_high else "") + ".", ""]
    # a miss must be indeterminate: `not_detected` states that a high-level amplification is excluded
    false_exclusions = [r for r in rows if is_high_truth(r) and r["status"] == "not_detected"]
    md += [f"`not_detected` on a true high-level amplification (CN >= 8, TF > 0; a miss must be `indeterminate`): "
           f"{len(false_exclusions)}" + (" — " + ", ".join(r["sample"] for r in false_exclusions)
                                         if false_exclusions else "") + ".", ""]
    targets.append(f"No `not_detected` on a true high-level amplification (misses must be indeterminate): "
                   f"{len(false_exclusions)} — {'met' if not false_exclusions else 'MISSED'}.")

    # ---- sensitivity
    md += ["## Sensitivity for high-level amplification", "",
           "Truth high-level: CN >= 8 and TF > 0 (main grid, crc_typical). Binned by TF x (CN − 2), the excess "
           "plasma copies. Targets: >= 95% where TF x (CN − 2) >= 0.5 (panel) and >= 1.0 (WGS, 300 kb amplicon).",
           ""]
    body = []
    for mode in modes:
        pos = [r for r in grid if r["mode"] == mode and is_high_truth(r)]
        for low, high in SENSITIVITY_BINS:
            chosen = [r for r in pos if low <= round(r["tf"] * (r["cn"] - 2), 6) < high]
            if not chosen:
                continue
            hits = sum(r["status"] == "high_level_amplification" for r in chosen)
            codes = Counter(r["code"] for r in chosen)
            body.append([mode, sensitivity_bin(low), pct(hits, len(chosen)),
                         ", ".join(f"{k} {v}" for k, v in sorted(codes.items()))])
        target = SENSITIVITY_TARGET[mode]
        chosen = [r for r in pos if round(r["tf"] * (r["cn"] - 2), 6) >= target]
        hits = sum(r["status"] == "high_level_amplification" for r in chosen)
        met = "met" if chosen and hits / len(chosen) >= 0.95 else "MISSED"
        body.append([f"**{mode}**", f"**>= {target:g} (target)**", f"**{pct(hits, len(chosen))}**", f"**{met}**"])
        targets.append(f"Sensitivity, {mode}, TF x (CN − 2) >= {target:g}: {pct(hits, len(chosen))} "
                       f"(target >= 95%) — {met}.")
        above = [r for r in chosen if r["cn"] > HIGH]
        hits_above = sum(r["status"] == "high_level_amplification" for r in above)
        body.append([mode, f">= {target:g}, CN > 8 only", pct(hits_above, len(above)),
                     "CN 8 sits on the threshold: an unbiased estimate's CI spans 8 about half the time or more"])
    md += [table(["mode", "TF x (CN−2)", "sensitivity", "statuses"], body), ""]
    body = []
    for mode in modes:
        for tf in sorted({r["tf"] for r in grid}):
            cells = []
            for cn in [c for c in cns if c >= HIGH]:
                chosen = [r for r in grid if r["mode"] == mode and r["tf"] == tf and r["cn"] == cn]
                hits = sum(r["status"] == "high_level_amplification" for r in chosen)
                cells.append(f"{hits}/{len(chosen)}" if chosen else "")
            body.append([mode, fmt(tf)] + cells)
    md += ["High-level calls per cell (both 17q states pooled):", "",
           table(["mode", "TF"] + [f"CN {fmt(c)}" for c in cns if c >= HIGH], body), ""]
    misses = [r for r in grid if is_high_truth(r) and r["status"] != "high_level_amplification"
              and round(r["tf"] * (r["cn"] - 2), 6) >= SENSITIVITY_TARGET.get(r["mode"], 0)]
    if misses:
        md += ["Misses inside the target region, by cell (statuses per seed; one example reason):", ""]
        md += by_cell(misses) + [""]

    # ---- TF error
    md += ["## Tumour-fraction error", "",
           "Main grid, TF >= 0.05. Within = |estimate − truth| <= 0.03 or <= 20% of truth; an undetected TF counts "
           "as not within. Target (WGS): every sample within. CI covers: the detected estimates' 95% intervals "
           "holding the truth (an honest interval: about 95%).", ""]
    body = []
    for mode in modes:
        for tf in [t for t in sorted({r["tf"] for r in grid}) if t >= 0.05] + ["all"]:
            chosen = [r for r in grid if r["mode"] == mode and r["tf"] >= 0.05 and (tf == "all" or r["tf"] == tf)]
            detected = [r for r in chosen if r.get("tf_detected")]
            errors_ = [abs(r["tf_estimate"] - r["tf"]) for r in detected]
            within = sum(tf_within(r) for r in chosen)
            if tf == "all":
                fraction = within / len(chosen) if chosen else 0
                targets.append(f"TF error, {mode}, TF >= 0.05: {pct(within, len(chosen))} within 0.03 abs or 20% rel"
                               + (f", mean abs error {statistics.mean(errors_):.3f} over detected" if errors_ else "")
                               + (f" (target: all within) — {'met' if fraction == 1 else 'MISSED'}."
                                  if mode == "wgs" else " (no target for panel)."))
            body.append([mode if tf != "all" else f"**{mode}**", fmt(tf) if tf != "all" else "**all >= 0.05**",
                         len(chosen), len(detected), statistics.mean(errors_) if errors_ else None,
                         max(errors_) if errors_ else None, pct(within, len(chosen)),
                         pct(sum(r["tf_lo"] <= r["tf"] <= r["tf_hi"] for r in detected), len(detected))])
    md += [table(["mode", "TF", "n", "TF detected", "mean abs error", "max abs error", "within", "CI covers"], body),
           ""]
    low_tf = [r for r in grid if r["tf"] < 0.05]
    for mode in modes:
        chosen = [r for r in low_tf if r["mode"] == mode]
        if chosen:
            detected = sum(bool(r.get("tf_detected")) for r in chosen)
            weighted = sum(weighted_accepted(r) for r in chosen)
            covered = sum(r["tf_lo"] <= r["tf"] <= r["tf_hi"] for r in chosen if r.get("tf_detected"))
            md += [f"TF 0.02 ({mode}): TF detected in {pct(detected, len(chosen))} with all fragments (95% CI covering "
                   f"the truth in {covered} of them), and in "
                   f"{weighted} more by the size-weighted second look; "
                   f"median detection limit reported {statistics.median([r['tf_detection_limit'] for r in chosen if r.get('tf_detection_limit') is not None] or [float('nan')]):.3f}."]
    for mode in modes:
        chosen = [r for r in tf0 if r["mode"] == mode]
        if chosen:
            md += [f"TF 0 ({mode}): TF (falsely) detected in {pct(sum(bool(r.get('tf_detected')) for r in chosen), len(chosen))}"
                   + "; estimates: " + (", ".join(fmt(r["tf_estimate"]) for r in chosen if r.get("tf_detected")) or "none")
                   + f"; by the size-weighted second look in {sum(weighted_accepted(r) for r in chosen)}"
                   + f" ({sum(bool(r.get('weighted_tf_above_ceiling')) for r in chosen)} more above its ceiling, not used)"
                   + f" (largest fit improvement {max(r.get('weighted_tf_fit_improvement') or 0 for r in chosen):.1f}"
                   + " of the 10 needed)."]
    for mode in modes:
        chosen = [r for r in rows if r["mode"] == mode and r.get("called_on") == "size_weighted"]
        md += [f"Calls made by the size-weighted second look ({mode}): {len(chosen)}"
               + (" (" + ", ".join(f"{code} {n}" for code, n in sorted(Counter(r['code'] for r in chosen).items()))
                  + ")" if chosen else "") + "."]
    outside = [r for r in grid if r["tf"] >= 0.05 and not tf_within(r)]
    if outside:
        md += ["", "Outside the TF tolerance, by (mode, TF): estimates (– = not detected):", ""]
        groups = defaultdict(list)
        for r in outside:
            groups[(r["mode"], r["tf"])].append(r)
        for (mode, tf), chosen in groups.items():
            total = sum(1 for r in grid if r["mode"] == mode and r["tf"] == tf)
            values = sorted((r["tf_estimate"] for r in chosen if r.get("tf_detected")))
            md += [f"- {mode} TF {fmt(tf)}: {len(chosen)}/{total} outside; not detected "
                   f"{sum(not r.get('tf_detected') for r in chosen)}"
                   + (f"; detected but off: {', '.join(f'{v:.3f}' for v in values)}" if values else "")]
    md += [""]

    # ---- level accuracy
    md += ["## Level accuracy (high vs low)", "",
           "Among detected gains (status H or L) with TF >= 0.10 (main grid): the called level matches the truth "
           "(high iff CN >= 8). Target >= 95%.", ""]
    body = []
    wrong = []
    for mode in modes:
        chosen = [r for r in grid if r["mode"] == mode and r["tf"] >= 0.10 and r["code"] in ("H", "L")]
        correct = [r for r in chosen if (r["code"] == "H") == (r["cn"] >= HIGH)]
        wrong += [r for r in chosen if r not in correct]
        undecided = [r for r in grid if r["mode"] == mode and r["tf"] >= 0.10 and r["code"] not in ("H", "L", "N")]
        targets.append(f"Level accuracy, {mode}, detected with TF >= 0.10: {pct(len(correct), len(chosen))} "
                       f"(target >= 95%) — {'met' if chosen and len(correct) / len(chosen) >= 0.95 else 'MISSED'}.")
        body.append([mode, len(chosen), pct(len(correct), len(chosen)),
                     "met" if chosen and len(correct) / len(chosen) >= 0.95 else "MISSED", len(undecided)])
    md += [table(["mode", "detected (H/L)", "correct level", "target", "indeterminate/error (not counted)"], body), ""]
    if wrong:
        md += ["Wrong level, by cell:", ""] + by_cell(wrong) + [""]

    # ---- copy-number error
    md += ["## Tumour copy-number error", "",
           "Main grid, TF > 0, where a tumour CN was estimated (TF detected). Truth: the tumour's copy number "
           "at ERBB2 (3 for the grid's CN 2 under a 17q gain). Median |estimate − truth|; relative = that / truth.",
           ""]
    body = []
    for mode in modes:
        for cn in cns + ["all"]:
            chosen = [r for r in grid if r["mode"] == mode and r.get("tumor_cn") is not None
                      and (cn == "all" or r["cn"] == cn)]
            if not chosen:
                continue
            errors_ = [abs(r["tumor_cn"] - r["erbb2_cn"]) for r in chosen]
            covered = sum(r["tumor_cn_lo"] <= r["erbb2_cn"] <= r["tumor_cn_hi"] for r in chosen)
            n_total = len([r for r in grid if r["mode"] == mode and (cn == "all" or r["cn"] == cn)])
            body.append([mode if cn != "all" else f"**{mode}**", fmt(cn) if cn != "all" else "**all**",
                         f"{len(chosen)}/{n_total}", statistics.median(errors_),
                         statistics.median([e / r["erbb2_cn"] for e, r in zip(errors_, chosen)]),
                         pct(covered, len(chosen))])
    md += [table(["mode", "true CN", "estimated", "median abs error", "median rel error", "CI covers truth"], body), ""]

    # ---- plasma copy-number bias
    md += ["## Plasma copy-number bias", "",
           "Main grid, TF >= 0.10, CN > 2: median of measured / true excess plasma copies, (PCN − 2) / (TF x "
           "(CN − 2)); 1 = unbiased. The tumour CN inherits this bias (and the TF estimate's).", ""]
    body = []
    for mode in modes:
        cells = []
        for cn in [c for c in cns if c > 2]:
            chosen = [r for r in grid if r["mode"] == mode and r["tf"] >= 0.10 and r["cn"] == cn
                      and r.get("plasma_cn") is not None]
            ratios = [(r["plasma_cn"] - 2) / (r["tf"] * (r["cn"] - 2)) for r in chosen]
            cells.append(statistics.median(ratios) if ratios else None)
        body.append([mode] + cells)
    md += [table(["mode"] + [f"CN {fmt(c)}" for c in cns if c > 2], body), ""]
    md += ["Plasma CN 95% interval covering the expected plasma CN (main grid, TF > 0, by true ERBB2 CN): an "
           "honest interval covers it about 95% of the time.", ""]
    body = []
    for mode in modes:
        cells = []
        for cn in cns + ["all"]:
            chosen = [r for r in grid if r["mode"] == mode and r["tf"] > 0 and r.get("plasma_cn") is not None
                      and (cn == "all" or r["cn"] == cn)]
            cells.append(pct(sum(r["plasma_cn_lo"] <= r["expected_plasma_cn"] <= r["plasma_cn_hi"] for r in chosen),
                             len(chosen)))
        body.append([mode] + cells)
    md += [table(["mode"] + [f"CN {fmt(c)}" for c in cns] + ["all"], body), ""]

    # ---- replicate pairs
    pairs = sorted(meta["replicate_pairs"].items(), key=lambda item: MODE_ORDER[item[0]])
    md += ["## Replicate pairs: what `monitor` reads into no change", "",
           "Every ordered pair of replicate draws (different seeds) of one grid cell with TF >= 10% and CN >= 8 — "
           "one tumour state sampled twice — run through `monitor`'s rules as baseline and later timepoint. With "
           "honest intervals the change z-score of the excess plasma CN scatters with SD 1 and falls beyond 1.96 "
           "in 5% of pairs; any category but `stable` is a false alarm.", ""]
    body = [[mode, len(e["z"]), f"{statistics.pstdev(e['z']):.2f}" if len(e["z"]) > 1 else "–",
             pct(sum(abs(z) > 1.959964 for z in e["z"]), len(e["z"])),
             ", ".join(f"{k} {v}" for k, v in sorted(e["responses"].items()))]
            for mode, e in pairs]
    md += [table(["mode", "ordered pairs", "change z SD", "beyond 1.96", "categories"], body), ""]
    md += [f"- {alarm}" for _, e in pairs for alarm in e["alarms"]] + [""]

    # ---- flat genome
    md += ["## Flat genome (no crc_typical): tumour fraction not estimable", "",
           "Only the ERBB2 event; no arm-level events, so the TF fit has nothing to fit. Expected: "
           "`indeterminate` unless the plasma CN alone is >= 8 (then `high_level_amplification`); CN 2: "
           "`not_detected` or `indeterminate` (LOD from the TF detection limit).", ""]
    body = []
    for r in sorted(flat, key=sort_key):
        expected = ("high_level_amplification" if r["expected_plasma_cn"] >= HIGH else
                    "not_detected/indeterminate" if r["cn"] == 2 else "indeterminate")
        ok = r["status"] in expected.split("/")
        pcn = (f"{r['plasma_cn']:.2f} ({r['plasma_cn_lo']:.2f}–{r['plasma_cn_hi']:.2f})"
               if r.get("plasma_cn") is not None else "–")
        tf_text = (f"{r['tf_estimate']:.3f}" if r.get("tf_detected") else
                   f"< {r['tf_detection_limit']:.3f}" if r.get("tf_detection_limit") is not None else "–")
        body.append([r["mode"], fmt(r["tf"]), fmt(r["cn"]), f"{r['expected_plasma_cn']:g}", pcn, tf_text,
                     f"{r['status']} ({r['code']})", "yes" if ok else "**no**"])
    md += [table(["mode", "TF", "CN", "true plasma CN", "plasma CN (95% CI)", "TF estimate", "status", "as expected"],
                 body), ""]
    md += [f"Legend: {LEGEND}.", ""]
    md += beside_section(beside)
    md += polyploid_section(polyploid)
    md[summary_at:summary_at] = ["## Targets", ""] + [f"- {t}" for t in targets] + [""]
    return "\n".join(md)


def beside_section(rows: list[dict]) -> list[str]:
    """An amplicon next to ERBB2 that does not contain it: ERBB2 is at CN 2, so no gain may be called."""
    md = ["## An amplicon beside ERBB2", "",
          f"`--event {BESIDE_ERBB2}:CN` with `--preset crc_typical`: CDK12 to the first half of PGAP3, ending 900 bp "
          "before ERBB2, whose own copy number stays 2. Part of the amplicon core (PGAP3-ERBB2-MIEN1-GRB7) is "
          "amplified, so the core's bins disagree with ERBB2's own; expected: `not_detected` or `indeterminate`, "
          "never a gain. Not part of the grid's tables or targets above.", ""]
    body = [[r["mode"], fmt(r["tf"]), r["sample"].split("-amp")[1].split("-")[0], r.get("measured_on") or "–",
             f"{r['plasma_cn']:.2f} ({r['plasma_cn_lo']:.2f}–{r['plasma_cn_hi']:.2f})" if r.get("plasma_cn") else "–",
             f"{r['status']} ({r['code']})",
             "yes" if r["status"] in ("not_detected", "indeterminate") else "**no**"]
            for r in sorted(rows, key=lambda row: (sort_key(row), row["sample"]))]
    ok = sum(row[-1] == "yes" for row in body)
    md += [table(["mode", "TF", "amplicon CN", "ERBB2 measured on", "plasma CN (95% CI)", "status", "as expected"],
                 body), "", f"As expected: {ok} of {len(body)}.", ""]
    return md


def polyploid_section(rows: list[dict]) -> list[str]:
    """Polyploid tumours, called on their own fit (read as diploid) and given their true tumour fraction."""
    md = ["## Polyploid tumours", "",
          "Every contig at the baseline copy number, crc_typical's arm events as steps from it, and the 300 kb "
          "ERBB2 amplicon at the CN given: `doubled` (baseline 4, steps of 2: doubled after its arm events), "
          "`tetraploid` (4, steps of 1), `triploid` (3, steps of 1). The fit reads each as diploid at another "
          "tumour fraction (the readings fit equally well: README, Ploidy readings), and lists the true reading "
          "among `erbb2.ploidy_readings`. Expected on the sample's own fit: a true CN >= 8 never `low_level_gain` "
          "or `not_detected`, a true CN < 8 never `high_level_amplification`; given the true tumour fraction "
          "(`--tumor-fraction`), CN >= 12 `high_level_amplification` and CN 6 not. Not part of the grid's tables "
          "or targets above.", ""]

    def expected(row):
        own = row["code"] not in ("L", "N") if row["cn"] >= HIGH else row["code"] != "H"
        given = row["given_tf_code"] == "H" if row["cn"] >= 12 else row["given_tf_code"] not in ("H", None)
        return own and given

    cells = defaultdict(list)
    for row in sorted(rows, key=lambda r: (sort_key(r), r["genome"])):
        cells[(row["mode"], row["genome"], row["tf"], row["cn"])].append(row)
    body = []
    for (mode, genome, tf, cn), members in cells.items():
        def spread(key):
            values = [r[key] for r in members if r.get(key) is not None]
            return "–" if not values else "/".join(f"{v:.3g}" for v in values)
        body.append([mode, genome, fmt(tf), fmt(cn), "".join(r["code"] for r in members), spread("tf_estimate"),
                     spread("tumor_cn"), spread("reading_tf"), spread("reading_tumor_cn"),
                     "".join(r["given_tf_code"] or "E" for r in members), spread("given_tf_tumor_cn"),
                     f"{sum(expected(r) for r in members)}/{len(members)}"])
    ok = sum(expected(r) for r in rows)
    md += [table(["mode", "genome", "TF", "ERBB2 CN", "status (own fit)", "TF fitted (as diploid)",
                  "tumour CN (diploid reading)", "TF (true reading)", "tumour CN (true reading)",
                  "status (true TF given)", "tumour CN (true TF given)", "as expected"], body), "",
           f"As expected: {ok} of {len(rows)}. Status codes as in the legend above.", ""]
    return md


def replicate_pairs(results: list[dict]) -> dict:
    """What ``monitor`` reads into no change: every ordered pair of replicate draws (different seeds) of one grid
    cell with TF >= 10% and CN >= 8, as baseline and later timepoint. Per mode: the change z-scores of the
    excess plasma CN, the response categories, and each pair not called ``stable`` (a false alarm)."""
    from her2cnv import io as h2io, monitor

    thresholds = h2io.read_thresholds()
    cells = defaultdict(list)
    for result in results:
        spec = result["spec"]
        if "call" in result and spec["group"] == "grid" and spec["tf"] >= 0.1 and spec["cn"] >= HIGH:
            cells[(spec["mode"], spec["tf"], spec["cn"], spec["arm_gain"])].append(result)
    summary = {}
    for (mode, tf, cn, arm), members in sorted(cells.items()):
        entry = summary.setdefault(mode, {"z": [], "responses": Counter(), "alarms": []})
        members.sort(key=lambda r: r["spec"]["replicate"])
        for earlier, later in itertools.permutations(members, 2):
            points = [monitor.timepoint(r["call"], date, r["spec"]["name"])
                      for r, date in ((earlier, "2026-01-01"), (later, "2026-01-22"))]
            change = monitor.track_patient(points, thresholds)[1]["change_from_baseline"]
            excess = change["excess_plasma_copy_number"]
            if excess["z_score"] is not None:
                entry["z"].append(excess["z_score"])
            entry["responses"][change["response"]] += 1
            if change["response"] != "stable":
                entry["alarms"].append(f"{mode} TF {fmt(tf)} CN {fmt(cn)} {'17q gain' if arm else 'no 17q gain'}: "
                                       f"{change['response']} ({change['reason']})")
    return summary


# ---------------------------------------------------------------- main

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_info() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        untracked = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                                   text=True).stdout.strip()
        if dirty or untracked != dirty:
            commit += " + uncommitted changes"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"cpu": cpu, "nproc": os.cpu_count(), "commit": commit, "python": platform.python_version()}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.quick_arm_cells = False
    if args.quick:
        apply_quick(args)
    out = args.out or (args.workdir / "quick-results" if args.quick else DEFAULT_OUT)
    started = time.perf_counter()
    if args.fresh and args.workdir.exists():
        log(f"--fresh: deleting {args.workdir}")
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    import her2cnv.cli  # noqa: F401  loaded once here, so forked workers share one version of the code

    with ProcessPoolExecutor(args.workers) as pool:
        reference, layouts = setup(args, pool)
        log(f"setup done in {time.perf_counter() - started:.0f} s")
        specs = build_grid(args, layouts)
        for layout in layouts.values():
            for calls in (layout["calls"], layout["given_tf_calls"]):
                if calls.exists():
                    shutil.rmtree(calls)  # calls are redone every run
        todo = sum(not Path(s.counts).exists() for s in specs)
        log(f"{len(specs)} samples ({todo} to simulate)")
        results, done = [], 0
        # slowest first (uncached), in a deterministic order
        ordered = sorted(specs, key=lambda s: (Path(s.counts).exists(), s.name))
        jobs = [pool.submit(run_spec, spec, str(reference)) for spec in ordered]
        for job in as_completed(jobs):
            results.append(job.result())
            done += 1
            if done % 20 == 0 or done == len(jobs):
                log(f"{done}/{len(jobs)} samples ({time.perf_counter() - started:.0f} s)")
    rows = sorted((flatten(r) for r in results), key=sort_key)
    write_tsv(rows, out / "validation.tsv")
    wall = time.perf_counter() - started
    meta = machine_info()
    from her2cnv import io as h2io
    import numpy as np
    lengths = h2io.read_fasta_lengths(str(reference))
    n_bins = {}
    for mode, layout in layouts.items():
        bins, _ = h2io.read_bins(str(layout["bins"]))
        n_bins[mode] = len(bins)
    bins_per_arm = "–"
    if "wgs" in layouts:
        from her2cnv import purity
        panels, _ = h2io.read_panel(str(layouts["wgs"]["pon"]))
        bins, _ = h2io.read_bins(str(layouts["wgs"]["bins"]))
        per_arm = purity.median_bins_per_arm(bins, panels["all"].usable, h2io.load_assembly("GRCh38"))
        bins_per_arm = f"{per_arm:.0f}"
    panel_targets = "–"
    if "panel" in layouts and layouts["panel"]["panel_bed"].exists():
        panel_targets = sum(1 for line in layouts["panel"]["panel_bed"].read_text().splitlines()
                            if line and not line.startswith("#"))
    # a log of runs beside the cache, so a report regenerated from cached counts still shows what simulating cost
    run_log = Path(reference).parent / "runs.jsonl"
    n_simulated = sum(bool(r.get("simulated")) for r in results)
    import resource

    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    entry = {"date": time.strftime("%Y-%m-%d %H:%M"), "wall_seconds": round(wall), "n_simulated": n_simulated,
             "worker_cpu_seconds": round(cpu.ru_utime + cpu.ru_stime), "load_average_end": os.getloadavg()[0],
             "n_called": len(results), "fresh": bool(args.fresh), "quick": bool(args.quick),
             "command": " ".join(sys.argv[1:]) if argv is None else " ".join(argv)}
    with open(run_log, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    full_runs = [json.loads(line) for line in run_log.read_text().splitlines() if line.strip()]
    full_runs = [r for r in full_runs if r["fresh"] and not r["quick"] and r["n_called"] == len(results)]
    meta["full_run"] = (f"last from-scratch run (`--fresh`, reference, bins, normals, PoNs and all "
                        f"{full_runs[-1]['n_simulated']} samples simulated, counted and called): "
                        f"{full_runs[-1]['wall_seconds'] / 60:.1f} min on {full_runs[-1]['date']}"
                        + (f", worker CPU {full_runs[-1]['worker_cpu_seconds'] / 60:.1f} min"
                           if "worker_cpu_seconds" in full_runs[-1] else "")
                        if full_runs else "no from-scratch run of this grid logged")
    meta.update({"wall": f"{wall / 60:.1f} min ({wall:.0f} s)", "workers": args.workers,
                 "date": time.strftime("%Y-%m-%d"),
                 "n_simulated": sum(bool(r.get("simulated")) for r in results), "n_called": len(results),
                 "command": " ".join(["python benchmarks/validate_call.py"] + (argv if argv is not None else sys.argv[1:])),
                 "genome_mb": sum(lengths.values()) / 1e6, "n_bins": n_bins, "bins_per_arm": bins_per_arm,
                 "panel_targets": panel_targets, "cache": getattr(args, "cache_info", {}),
                 "replicate_pairs": replicate_pairs(results)})
    (out / "validation.md").write_text(report(rows, args, meta))
    seconds = sorted(r["seconds"] for r in results)
    log(f"wrote {out / 'validation.md'} and validation.tsv; wall {wall:.0f} s; per sample median "
        f"{statistics.median(seconds):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
