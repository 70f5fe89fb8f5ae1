#!/usr/bin/env python3
"""Does the tumour-fraction detection threshold hold on a whole genome? Null and power on 22 autosomes.

``her2cnv call`` reports the tumour fraction (TF) as detected when the copy-number fit improves
on an all-diploid genome by at least ``min_fit_improvement`` (reference/thresholds.toml), a value
calibrated on the six-contig genome of benchmarks/validate_call.py. A whole genome has more
segments, so more chances for noise to improve the fit of a tumour-free sample. This script
simulates chr1-chr22 at GRCh38 length (``--scale 1``) as low-pass WGS at 0.5x and calls:

- the null: ``--nulls`` (default 240) tumour-free samples (TF 0 with ``--preset crc_typical``: the
  events are given, but there is no tumour DNA in the plasma), against a panel of 15 normals;
- power: 6 samples each at TF 2% and 5% (``--preset crc_typical --preset erbb2_focal``);
- low-level ERBB2 gains: 10 samples each at tumour CN 4 and 6 (``--erbb2-copy-number``) and TF 2% and 3%,
  where a whole genome detects the tumour fraction and a small plasma excess, read high by noise, would
  mean many tumour copies: none may be called high-level.

It reports the null distribution of the fit improvement, how many samples pass the threshold (with
the exact one-sided 95% upper bound on the false-detection rate that allows), the TF estimates and
the ERBB2 statuses. Everything runs through the CLI (``her2cnv simulate reference``, ``bins``,
``simulate sample --bins``, ``pon``, ``call``) in subprocesses, ``--jobs`` at a time, with fixed seeds. The reference, bins, counts and panel of normals are cached in
``--work`` (git-ignored) and reused when present; calls are redone every run. After changing the
simulator or the bins code, delete the work folder.

Usage: python benchmarks/whole_genome_null.py [--nulls 240] [--jobs 2] [--work DIR] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from validate_call import log, machine_info

REPO = Path(__file__).resolve().parents[1]
CONTIGS = ",".join(f"chr{i}" for i in range(1, 23))
REFERENCE_SEED = 7
DEPTH = 0.5
TUMOUR = ["crc_typical", "erbb2_focal"]
# (folder, sample name, number of samples, first seed, tumour fraction, presets, other simulate options, role in
# the report); the null's number is --nulls
GROUPS = [("normals", "N{:02d}", 15, 1001, 0.0, ["none"], [], "Panel of normals"),
          ("null", "null{:02d}", None, 2001, 0.0, ["crc_typical"], [],
           "Null (no tumour DNA, so its events are absent)"),
          ("tumour", "tf0.02-r{}", 6, 3001, 0.02, TUMOUR, [], "Power"),
          ("tumour", "tf0.05-r{}", 6, 4001, 0.05, TUMOUR, [], "Power"),
          *(("lowlevel", f"cn{cn}-tf{tf:g}-r{{}}", 10, seed, tf, TUMOUR, ["--erbb2-copy-number", str(cn)],
             "Low-level ERBB2 gain") for cn, tf, seed in ((4, 0.02, 5001), (4, 0.03, 6001), (6, 0.02, 7001),
                                                           (6, 0.03, 8001)))]


def her2cnv(*arguments) -> None:
    """``her2cnv ARGUMENTS --quiet`` in a subprocess; raise with its message if it fails."""
    command = ["her2cnv", *map(str, arguments), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-500:]}")


def make(output: Path, *arguments) -> bool:
    """``her2cnv ARGUMENTS -o OUTPUT`` unless OUTPUT exists, written under a temporary name and renamed when done."""
    if output.exists():
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name("partial-" + output.name)
    try:
        her2cnv(*arguments, "-o", partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return True


def groups(nulls: int) -> list[tuple]:
    return [(folder, name, nulls if n is None else n, *rest) for folder, name, n, *rest in GROUPS]


def samples(work: Path, nulls: int) -> list[dict]:
    return [{"group": folder, "name": name.format(i), "seed": seed + i - 1, "tf": tf, "presets": presets,
             "options": options, "counts": work / folder / f"{name.format(i)}.counts.tsv"}
            for folder, name, n, seed, tf, presets, options, _ in groups(nulls) for i in range(1, n + 1)]


def simulate(sample: dict, reference: Path, bins: Path) -> bool:
    counts = sample["counts"]
    presets = [x for p in sample["presets"] for x in ("--preset", p)]
    return make(counts, "simulate", "sample", "--reference", reference, "--bins", bins, "--seed", sample["seed"],
                "--sample", sample["name"], "--tumor-fraction", f"{sample['tf']:g}", *presets, *sample["options"],
                "--depth", DEPTH,
                "--truth", counts.with_name(f"{sample['name']}.truth.json"))


def call(sample: dict, pon: Path, calls: Path) -> dict:
    her2cnv("call", sample["counts"], "--pon", pon, "-o", calls, "--no-plots")
    return json.loads((calls / f"{sample['name']}.call.json").read_text())


def in_pool(jobs: int, function, items: list, what: str) -> list:
    """``function(item)`` for every item, ``jobs`` at a time, in order; a progress line every 10."""
    results = []
    with ThreadPoolExecutor(jobs) as pool:
        for k, result in enumerate(pool.map(function, items), 1):
            results.append(result)
            if k % 10 == 0 or k == len(items):
                log(f"{what}: {k}/{len(items)}")
    return results


def upper_bound(successes: int, n: int, level: float = 0.95) -> float:
    """Exact (Clopper-Pearson) one-sided upper confidence bound on a binomial rate, by bisection."""
    low, high = successes / n, 1.0
    for _ in range(60):
        rate = (low + high) / 2
        below = sum(math.comb(n, k) * rate ** k * (1 - rate) ** (n - k) for k in range(successes + 1))
        low, high = (rate, high) if below > 1 - level else (low, rate)
    return high


def fmt_ci(tf: dict) -> str:
    if tf["estimate"] is None:
        return f"< {tf['detection_limit']:.3f} (limit)"
    return f"{tf['estimate']:.4g} ({tf['ci95'][0]:.4g}–{tf['ci95'][1]:.4g})"


def second_look(null: list[dict], threshold: float) -> list[str]:
    """Lines on the size-weighted second look ('call' makes it whenever all fragments show no tumour DNA):
    how close tumour-free samples came to detection there, and the false-detection rate of either look."""
    fits = [r["call"]["tumor_fraction"]["size_weighted"] for r in null]
    improvement = sorted(fit["fit_improvement"] for fit in fits if fit)
    detected = [fit for fit in fits if fit and fit["detected"]]
    accepted = [fit for fit in detected if not fit["above_ceiling"]]
    either = sum(r["call"]["tumor_fraction"]["detected"] for r in null) + len(accepted)
    return [f"Second look, size-weighted fragments (made for {len(improvement)} of {len(null)}): fit improvement median "
            f"{statistics.median(improvement):.2f}, 90th percentile "
            f"{statistics.quantiles(improvement, n=10, method='inclusive')[-1]:.2f}, max {improvement[-1]:.2f} "
            f"({improvement[-1] / threshold:.0%} of the threshold); TF detected in {len(detected)} ("
            + (", ".join(f"share {fit['estimate']:.4g} against a ceiling of {fit['ceiling']:.4g}" for fit in detected)
               or "none") + f"), of which {len(accepted)} under the ceiling and used. Either look: {either} detected, "
            f"false-detection rate below {upper_bound(either, len(null)):.1%} (one-sided 95%)."]


def report(rows: list[dict], thresholds: dict, meta: dict) -> str:
    """The markdown report; ``meta['nulls']`` is the null group's size."""
    threshold, reportable = thresholds["min_fit_improvement"], thresholds["min_reportable"]
    null = [r for r in rows if r["group"] == "null"]
    null.sort(key=lambda r: r["call"]["tumor_fraction"]["fit_improvement"])
    imp = [r["call"]["tumor_fraction"]["fit_improvement"] for r in null]
    p90 = statistics.quantiles(imp, n=10, method="inclusive")[-1]
    limits = [r["call"]["tumor_fraction"]["detection_limit"] for r in null]
    status = Counter(r["call"]["erbb2"]["status"] for r in null)
    detected = sum(r["call"]["tumor_fraction"]["detected"] for r in null)
    md = ["# Tumour-fraction detection on a whole simulated genome", "",
          f"her2cnv commit `{meta['commit']}`, {meta['date']}; machine: {meta['nproc']} CPUs ({meta['cpu']}), "
          f"Python {meta['python']}; {meta['jobs']} jobs at a time; wall time {meta['wall']}, "
          f"{meta['simulated']} samples simulated this run, {meta['called']} called.", "",
          "Generated by `python benchmarks/whole_genome_null.py`. Question: does `min_fit_improvement` "
          "(calibrated on the six-contig genome of `benchmarks/validate_call.py`) keep tumour-free samples "
          "below it on a whole genome, and what does it detect at TF 2% and 5%?", "",
          "## Design", "",
          f"- Genome: the 22 autosomes (chr1–chr22) at GRCh38 length (`--scale 1`, reference seed {REFERENCE_SEED}); "
          f"{meta['genome_gb']:.2f} Gb, {meta['n_bins']} bins (100 kb, 10 kb over the 17q12 locus); low-pass WGS at {DEPTH:g}x.",
          *(f"- {role}: {n} samples ({name.format(1)}, ...), TF {tf:g}, "
            + " ".join([f"`--preset {p}`" for p in presets] + [f"`{' '.join(options)}`"] * bool(options))
            + f", seeds {seed}–{seed + n - 1}."
            for _, name, n, seed, tf, presets, options, role in groups(meta["nulls"])),
          "- `crc_typical`: +8q, +13, +20q, −18; `erbb2_focal`: ERBB2 at tumour CN 20 over 300 kb "
          "(simulator defaults; the low-level samples set the CN).",
          f"- Threshold (reference/thresholds.toml, `[tumor_fraction]`): TF is detected when the fit improvement is "
          f">= `min_fit_improvement` = {threshold:g} and the estimate >= `min_reportable` = {reportable:g}; "
          "`tumor_fraction.fit_improvement` and `.detected` are read from each call.json.", "",
          "```", f"her2cnv simulate reference -o ref/reference.fa --contigs chr1,...,chr22 --scale 1 "
          f"--seed {REFERENCE_SEED}", "her2cnv bins --fasta ref/reference.fa -o bins.tsv",
          "her2cnv simulate sample --reference ref/reference.fa --bins bins.tsv -o NAME.counts.tsv --seed SEED "
          f"--sample NAME --tumor-fraction TF --preset PRESET... --depth {DEPTH:g} --truth NAME.truth.json",
          "her2cnv pon normals/*.counts.tsv -o pon.npz",
          "her2cnv call NAME.counts.tsv --pon pon.npz -o calls --no-plots", "```", "",
          "## Null (TF 0)", "",
          f"| n | min | median | 90th pct | max | >= {threshold:g} | TF detected | false-detection rate, 95% upper bound |",
          "|---|---|---|---|---|---|---|---|",
          f"| {len(imp)} | {imp[0]:.2f} | {statistics.median(imp):.2f} | {p90:.2f} | {imp[-1]:.2f} | "
          f"{sum(x >= threshold for x in imp)} | {detected} | {upper_bound(detected, len(null)):.1%} |", "",
          f"Fit improvement; 90th percentile by linear interpolation. The largest null improvement is "
          f"{imp[-1] / threshold:.0%} of the threshold ({null[-1]['name']}). Detection limit reported: median "
          f"{statistics.median(limits):.4f} (range {min(limits):.4f}–{max(limits):.4f}). ERBB2 status: "
          + ", ".join(f"{s} {n}" for s, n in sorted(status.items())) + ".", "",
          *second_look(null, threshold), "",
          "## Tumour samples", "",
          "| sample | seed | true TF | fit improvement | TF estimate (95% CI) | TF detected | ERBB2 status | "
          "ERBB2 measured on | called on | tumour CN (95% CI) |", "|---|---|---|---|---|---|---|---|---|---|"]
    tumour = [r for r in rows if r["group"] == "tumour"]
    for r in tumour:
        tf, erbb2 = r["call"]["tumor_fraction"], r["call"]["erbb2"]
        cn = ("–" if erbb2["tumor_copy_number"] is None else f"{erbb2['tumor_copy_number']:.1f} "
              f"({erbb2['tumor_copy_number_ci95'][0]:.1f}–{erbb2['tumor_copy_number_ci95'][1]:.1f})")
        md.append(f"| {r['name']} | {r['seed']} | {r['tf']:g} | {tf['fit_improvement']:.2f} | {fmt_ci(tf)} | "
                  f"{'yes' if tf['detected'] else 'no'} | {erbb2['status']} | {erbb2['measured_on']} | "
                  f"{erbb2['called_on']} | {cn} |")
    md += ["", "ERBB2 measured on `segment`: the level of the segment holding ERBB2; on `core`: the amplicon core "
           "bins, used when they depart from that segment (an amplicon the segmentation missed)."]
    md += ["", f"| true TF | n | fit improvement median (min–max) | >= {threshold:g} | TF detected | ERBB2 statuses |",
           "|---|---|---|---|---|---|"]
    for fraction in sorted({r["tf"] for r in tumour}):
        chosen = [r for r in tumour if r["tf"] == fraction]
        values = [r["call"]["tumor_fraction"]["fit_improvement"] for r in chosen]
        statuses = Counter(r["call"]["erbb2"]["status"] for r in chosen)
        md.append(f"| {fraction:g} | {len(chosen)} | {statistics.median(values):.2f} ({min(values):.2f}–"
                  f"{max(values):.2f}) | {sum(x >= threshold for x in values)} | "
                  f"{sum(r['call']['tumor_fraction']['detected'] for r in chosen)} | "
                  + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())) + " |")
    md += low_level(rows)
    return "\n".join(md) + "\n"


def low_level(rows: list[dict]) -> list[str]:
    """Lines on the low-level ERBB2 gains: their statuses, and any high-level call (a false one)."""
    md = ["", "## Low-level ERBB2 gains (tumour CN 4 and 6)", "",
          "A high-level call here would be false. With the tumour fraction detected, a plasma excess read high by "
          "noise means many tumour copies at TF 2-3%: the high-level rule asks for >= 6 tumour copies with the "
          "confidence a gain needs (3 SE), not at the 95% interval's low end.", "",
          "| tumour CN | true TF | n | TF detected | ERBB2 statuses | high-level | largest tumour CN estimate "
          "(95% CI; at 3 SE) |", "|---|---|---|---|---|---|---|"]
    cells: dict[tuple, list] = {}
    for r in rows:
        if r["group"] == "lowlevel":
            cells.setdefault((r["name"].split("-")[0], r["tf"]), []).append(r)
    for (cn, fraction), chosen in sorted(cells.items()):
        statuses = Counter(r["call"]["erbb2"]["status"] for r in chosen)
        estimated = [r["call"]["erbb2"] for r in chosen if r["call"]["erbb2"]["tumor_copy_number"] is not None]
        top = max(estimated, key=lambda e: e["tumor_copy_number"], default=None)
        md.append(f"| {cn[2:]} | {fraction:g} | {len(chosen)} | "
                  f"{sum(r['call']['tumor_fraction']['detected'] for r in chosen)} | "
                  + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
                  + f" | {statuses['high_level_amplification']} | "
                  + ("–" if top is None else f"{top['tumor_copy_number']:.1f} "
                     f"({top['tumor_copy_number_ci95'][0]:.1f}–{top['tumor_copy_number_ci95'][1]:.1f}; "
                     f"{top['tumor_copy_number_floor']:.1f})") + " |")
    return md


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / "work" / "whole_genome_null")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "whole_genome_null.md")
    parser.add_argument("--jobs", type=int, default=2, help="her2cnv processes at a time")
    parser.add_argument("--nulls", type=int, default=240, help="tumour-free samples")
    args = parser.parse_args()
    started = time.perf_counter()
    work = args.work
    reference, bins, pon, calls = work / "ref" / "reference.fa", work / "bins.tsv", work / "pon.npz", work / "calls"
    if not Path(f"{reference}.her2cnv.json").exists():  # the sidecar is written last
        log(f"simulating reference {reference}")
        reference.parent.mkdir(parents=True, exist_ok=True)
        her2cnv("simulate", "reference", "-o", reference, "--contigs", CONTIGS, "--scale", 1, "--seed", REFERENCE_SEED)
    if make(bins, "bins", "--fasta", reference):
        log(f"made {bins}")
    todo = samples(work, args.nulls)
    log(f"{len(todo)} samples, {sum(not s['counts'].exists() for s in todo)} to simulate")
    simulated = in_pool(args.jobs, lambda s: simulate(s, reference, bins), todo, "simulated")
    pon.unlink(missing_ok=True)  # rebuilt every run (seconds), so it always matches the code being measured
    make(pon, "pon", *(s["counts"] for s in todo if s["group"] == "normals"))
    shutil.rmtree(calls, ignore_errors=True)  # calls are redone every run
    called = [s for s in todo if s["group"] != "normals"]
    for sample, result in zip(called, in_pool(args.jobs, lambda s: call(s, pon, calls), called, "called")):
        sample["call"] = result
    thresholds = tomllib.loads((REPO / "reference" / "thresholds.toml").read_text())["tumor_fraction"]
    wall = time.perf_counter() - started
    meta = machine_info() | {
        "date": time.strftime("%Y-%m-%d"), "jobs": args.jobs, "wall": f"{wall / 60:.1f} min ({wall:.0f} s)",
        "simulated": sum(simulated), "called": len(called), "nulls": args.nulls,
        "genome_gb": sum(int(line.split("\t")[1]) for line in Path(f"{reference}.fai").read_text().splitlines()) / 1e9,
        "n_bins": sum(1 for line in bins.read_text().splitlines() if line and not line.startswith("#")) - 1}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(called, thresholds, meta))
    log(f"wrote {args.out}; wall {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
