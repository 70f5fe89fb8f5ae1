#!/usr/bin/env python3
"""Does fragment size help? ERBB2 signal, noise and tumour-fraction evidence per count channel, on simulations.

Tumour-derived cfDNA is shorter than normal cfDNA, so the short channel (90-150 bp)
carries a larger tumour share but fewer fragments, and the size-weighted channel (all
fragments, short ones counted normalize.SHORT_FRAGMENT_WEIGHT times) sits between.
For each tumour fraction this script simulates samples with a focal ERBB2
amplification (CN 20, 300 kb) on a colorectal background, normalises every channel
against its own panel of normals, and reports per channel: the ERBB2 amplicon's
z-score (its mean log2 ratio over its SE), the genome-wide noise (MAPD), and the
tumour-fraction fit's improvement over a flat genome (10 detects). The simulator's
fragment model (her2cnv/simulate.py: 16% of normal and 47% of tumour fragments in
90-150 bp) decides the answer; real size differences vary between samples.

Usage: python benchmarks/evaluate_fragment_channels.py [--seeds 3] [--out benchmarks/results/fragment_channels.md]
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from her2cnv import io, normalize, purity
from her2cnv.bins import arm_index
from her2cnv.segment import segment_profile
from simulated import reference_and_bins, run, simulated_counts

FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2)
AMPLICON = ("chr17", 39_600_000, 39_900_000)


def amplicon_z(profile, bins) -> float:
    inside = (bins.chrom == AMPLICON[0]) & (bins.start >= AMPLICON[1]) & (bins.end <= AMPLICON[2]) \
        & np.isfinite(profile.log2_ratio)
    weight = profile.weight[inside]
    return float(np.sum(weight * profile.log2_ratio[inside]) / np.sqrt(np.sum(weight)))


def main_script() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--normals", type=int, default=15)
    parser.add_argument("--depth", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path(__file__).parent / "work" / "fragment_channels")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fragment_channels.md")
    args = parser.parse_args()
    work = args.work
    reference, bins = reference_and_bins(work, "chr8,chr13,chr17,chr18,chr20", seed=5)

    def counted(name, *simulation):
        return simulated_counts(work, reference, bins, name, "--depth", args.depth, *simulation)

    normals = [counted(f"N{i}", "--seed", 500 + i, "--tumor-fraction", 0, "--preset", "none")
               for i in range(args.normals)]
    run("pon", *normals, "-o", work / "pon.npz")
    panels, _ = io.read_panel(work / "pon.npz")
    assembly = io.load_assembly(panels["all"].assembly)
    thresholds = io.read_thresholds()
    lines = [f"Simulated low-pass WGS at {args.depth}x, {args.normals} normals, {args.seeds} seeds per tumour "
             "fraction; ERBB2 amplicon CN 20 over 300 kb on a colorectal background (+8q, +13, +20q, -18). Per "
             "channel, means over seeds: ERBB2 z = amplicon mean log2 / SE; noise = MAPD; TF fit = the "
             "tumour-fraction fit's improvement over a flat genome (>= 10 detects).", "",
             "| tumour fraction | channel | ERBB2 z | noise (MAPD) | TF fit | TF detected |",
             "|---|---|---|---|---|---|"]
    for fraction in FRACTIONS:
        results = {channel: [] for channel in normalize.CHANNELS}
        for seed in range(args.seeds):
            sample = io.read_counts(counted(f"T{fraction}_{seed}", "--seed", 900 + seed, "--tumor-fraction", fraction,
                                            "--preset", "crc_typical", "--preset", "erbb2_focal"))
            for channel in normalize.CHANNELS:
                panel = panels[channel]
                profile = normalize.log2_ratios(normalize.channel_counts(sample, channel), panel, sample.bins)
                segments = segment_profile(profile.log2_ratio, profile.weight, sample.bins.chrom,
                                           arm=arm_index(sample.bins, assembly))
                fit = purity.fit_tumor_fraction(segments, sample.bins, panel.usable, profile.noise, assembly,
                                                thresholds, purity.model_error(panel, thresholds))
                results[channel].append((amplicon_z(profile, sample.bins), profile.noise, fit.fit_improvement,
                                         fit.detected))
        for channel, values in results.items():
            z, noise, improvement, detected = zip(*values)
            lines.append(f"| {fraction:.0%} | {channel} | {statistics.mean(z):.1f} | {statistics.mean(noise):.3f} | "
                         f"{statistics.mean(improvement):.1f} | {sum(detected)}/{len(detected)} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main_script()
