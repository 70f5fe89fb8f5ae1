#!/usr/bin/env python3
"""Monitoring on simulations: replicate draws of one state should be 'stable'; a real series should not.

Simulates ``--replicates`` plasma samples of each of two tumour states on a colorectal background
(different seeds): TF 20%, ERBB2 CN 20, far above the limit of detection, and TF 8%, CN 8, near it (where
a gain is detected in some draws and not in others: the case of a false 'progression' or 'clearance');
and the issue's series (baseline TF 20%, day 21 TF 5%, progression TF 30%). Calls them against one panel
of normals and compares every ordered pair of replicates of a state with ``monitor.track_patient``.
Writes the share of 'stable' pairs (target >= 95% far from the limit; near it, no response or progression
beyond the ~2.5% each that the two-sided z test allows) and the series' categories.

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

STATES = (("far", "R", 800, 0.2, 20, "TF 20%, ERBB2 CN 20"),  # (key, name prefix, first seed, TF, CN, label)
          ("near", "L", 850, 0.08, 8, "TF 8%, ERBB2 CN 8, near the limit of detection"))
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

    def counted(name, seed, fraction, copies=20):
        tumour = ("--preset", "crc_typical", "--preset", "erbb2_focal", "--erbb2-copy-number", copies)
        return simulated_counts(work, reference, bins, name, "--seed", seed, "--depth", args.depth,
                                "--tumor-fraction", fraction, *(tumour if fraction else ("--preset", "none")))

    def call(name, seed, fraction, *options, copies=20):
        run("call", counted(name, seed, fraction, copies), "--pon", work / "pon.npz", "-o", work / "calls",
            "--no-plots", *options)
        return work / "calls" / f"{name}.call.json"

    # counts are kept between runs; the panel and every call are made again, so they match the code measured
    normals = [counted(f"N{i}", 700 + i, 0) for i in range(args.normals)]
    run("pon", *normals, "-o", work / "pon.npz")
    shutil.rmtree(work / "calls", ignore_errors=True)
    thresholds = io.read_thresholds()
    responses, coverage = {}, {}
    for key, prefix, first_seed, fraction, copies, _ in STATES:
        replicates = [json.loads(call(f"{prefix}{seed}", first_seed + seed, fraction, "--patient", prefix,
                                      copies=copies).read_text()) for seed in range(args.replicates)]
        responses[key], coverage[key] = collections.Counter(), collections.Counter()
        for first, second in itertools.permutations(replicates, 2):  # ordered: either may be the baseline
            points = [monitor.timepoint(first, "2026-01-01", first["sample"]),
                      monitor.timepoint(second, "2026-02-01", second["sample"])]
            change = monitor.track_patient(points, thresholds)[1]["change_from_baseline"]
            responses[key][change["response"]] += 1
            for quantity in ("excess_plasma_copy_number", "tumor_fraction", "tumor_copy_number"):
                interval = (change.get(quantity) or {}).get("ci95")
                if interval:  # the truth is no change: replicate draws of one state
                    coverage[key][quantity, interval[0] <= 0 <= interval[1]] += 1
    series = [call(f"S_{label}", 900 + i, fraction, "--patient", "S", "--date", date)
              for i, (label, date, fraction) in enumerate(SERIES)]
    run("monitor", *series, "-o", work / "monitor")
    document = json.loads((work / "monitor" / "S.monitor.json").read_text())
    lines = [f"Simulated low-pass WGS at {args.depth}x, {args.normals} normals; {args.replicates} replicate draws "
             "(different seeds) of each state on a colorectal background; every ordered pair compared.", ""]
    for key, _, _, _, _, label in STATES:
        pairs, stable = sum(responses[key].values()), responses[key]["stable"]
        lines += [f"- {label}: `stable` **{stable}/{pairs} ({stable / pairs:.0%})**; all categories: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(responses[key].items())) + ". The change's 95% "
                  "interval holds the true change (none) for " + ", ".join(
                      f"{quantity.replace('_', ' ')} in {coverage[key][quantity, True]}/"
                      f"{coverage[key][quantity, True] + coverage[key][quantity, False]} pairs"
                      for quantity in ("excess_plasma_copy_number", "tumor_fraction", "tumor_copy_number")) + "."]
    lines += ["",
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
