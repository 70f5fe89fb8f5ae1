#!/usr/bin/env python3
"""Monitoring on simulations: replicate draws of one state should be 'stable'; a real series should not.

Simulates ``--replicates`` plasma samples of one tumour state (TF 20%, ERBB2 CN 20 on a
colorectal background; different seeds) and the issue's series (baseline TF 20%, day 21
TF 5%, progression TF 30%), calls them against one panel of normals, and compares every
pair of replicates with ``monitor.track_patient`` (each pair: the first as baseline).
Writes the share of 'stable' pairs (target >= 95%) and the series' categories.

Usage: python benchmarks/validate_monitor.py [--replicates 12] [--out benchmarks/results/monitor.md]
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import shutil
from pathlib import Path

from her2cnv import io, monitor
from simulated import reference_and_bins, run, simulated_counts

TUMOUR = ("--preset", "crc_typical", "--preset", "erbb2_focal", "--erbb2-copy-number", "20")
SERIES = (("baseline", "2026-01-05", 0.2), ("day21", "2026-01-26", 0.05), ("progression", "2026-04-20", 0.3))


def main_script() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=12)
    parser.add_argument("--normals", type=int, default=15)
    parser.add_argument("--depth", type=float, default=0.5)
    parser.add_argument("--work", type=Path, default=Path(__file__).parent / "work" / "monitor")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "monitor.md")
    args = parser.parse_args()
    work = args.work
    reference, bins = reference_and_bins(work, "chr1,chr8,chr13,chr17,chr18,chr20", seed=9)

    def counted(name, seed, fraction):
        return simulated_counts(work, reference, bins, name, "--seed", seed, "--depth", args.depth,
                                "--tumor-fraction", fraction, *(TUMOUR if fraction else ("--preset", "none")))

    def call(name, seed, fraction, *options):
        run("call", counted(name, seed, fraction), "--pon", work / "pon.npz", "-o", work / "calls", "--no-plots",
            *options)
        return work / "calls" / f"{name}.call.json"

    # counts are kept between runs; the panel and every call are made again, so they match the code measured
    normals = [counted(f"N{i}", 700 + i, 0) for i in range(args.normals)]
    run("pon", *normals, "-o", work / "pon.npz")
    shutil.rmtree(work / "calls", ignore_errors=True)
    thresholds = io.read_thresholds()
    replicates = [json.loads(call(f"R{seed}", 800 + seed, 0.2, "--patient", "R").read_text())
                  for seed in range(args.replicates)]
    responses = collections.Counter()
    for first, second in itertools.combinations(replicates, 2):
        points = [monitor.timepoint(first, "2026-01-01", first["sample"]),
                  monitor.timepoint(second, "2026-02-01", second["sample"])]
        responses[monitor.track_patient(points, thresholds)[1]["change_from_baseline"]["response"]] += 1
    series = [call(f"S_{label}", 900 + i, fraction, "--patient", "S", "--date", date)
              for i, (label, date, fraction) in enumerate(SERIES)]
    run("monitor", *series, "-o", work / "monitor")
    document = json.loads((work / "monitor" / "S.monitor.json").read_text())
    pairs = sum(responses.values())
    lines = [f"Simulated low-pass WGS at {args.depth}x, {args.normals} normals; {args.replicates} replicate draws "
             "(different seeds) of TF 20%, ERBB2 CN 20 on a colorectal background.", "",
             f"Replicate pairs called `stable`: **{responses['stable']}/{pairs} "
             f"({responses['stable'] / pairs:.0%})** (target >= 95%); all categories: "
             + ", ".join(f"{k} {v}" for k, v in sorted(responses.items())) + ".", "",
             "Series (truth: baseline TF 20%, day 21 TF 5%, progression TF 30%; ERBB2 CN 20):", "",
             "| sample | date | status | PCN | TF | response | excess PCN change |", "|---|---|---|---|---|---|---|"]
    for row in document["timepoints"]:
        change = row.get("change_from_baseline") or {}
        relative = (change.get("excess_plasma_copy_number") or {}).get("relative")
        lines.append(f"| {row['sample']} | {row['date']} | {row['status']} | {row['plasma_copy_number']:.2f} | "
                     f"{'below detection' if row['tumor_fraction'] is None else format(row['tumor_fraction'], '.1%')} | "
                     f"{change.get('response', 'baseline')} | {'' if relative is None else format(relative, '+.0%')} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main_script()
