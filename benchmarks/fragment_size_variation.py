#!/usr/bin/env python3
"""How the size-weighted second look fares when fragment sizes differ from the simulator's default.

``call`` looks again at size-weighted counts (each 90-150 bp fragment counted
SHORT_FRAGMENT_WEIGHT times) when all fragments show no tumour DNA. The validation grid
simulates every tumour with one fragment-length model (tumour peak 148 bp: 2.9-fold
enrichment of tumour DNA in 90-150 bp). Real tumours differ, so this script simulates
samples at TF 2% (mostly below the all-fragment detection limit, where the second look
decides the call) with the tumour's mononucleosomal peak moved (strong, weak or no
enrichment), and with the ERBB2 amplicon's tumour fragments sized unlike the rest of
the tumour (amplified DNA, on ecDNA say, may fragment differently).

What theory predicts: the second look reads the tumour copy number as
2 + (PCN_w - 2) / TF_w, with TF_w fitted to the arm-level events. Both the amplicon and
the arms are mixtures of the same normal DNA and tumour DNA, so the enrichment cancels
when the amplicon's tumour fragments are sized like the arms': the estimate stays
unbiased at any enrichment, and only the power to detect TF_w changes. When they differ,
the estimate becomes CN x w_amplicon / w_arms, with w = 1 + (SHORT_FRAGMENT_WEIGHT - 1) x
(share of tumour fragments in 90-150 bp); the table gives that expected value beside
the measured one.

Samples, reference, panels of normals and caching are benchmarks/validate_call.py's
(default work folder; the PoNs and the samples' counts are reused between runs).

Usage: python benchmarks/fragment_size_variation.py [--seeds 3] [--workers 2]
       [--out benchmarks/results/fragment_size_variation.md]
"""
from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import validate_call as validation
from her2cnv import normalize, simulate
from her2cnv.counts import CountFilters

# (tumour fraction, tumour CNs, conditions); a condition is (tumour peak, amplicon peak or None for the tumour's).
# First, at TF 2%: default, strong, weak and no enrichment, an amplicon shorter and one longer than the arms, and
# the adverse case of an enriched amplicon on a tumour that is not. Then, at TF 2.5% (near the all-fragment
# limit, where a second look still happens and its estimates are tighter), amplicons shorter than the arms on
# tumours without a high-level amplification: the second look's estimate runs high there and could cross 8.
SETS = ((0.02, (6, 12, 40), ((148, None), (136, None), (160, None), (167, None), (148, 136), (148, 167), (167, 136))),
        (0.025, (4, 6), ((148, 136), (160, 136), (167, 136))))


def short_share(components: list[dict]) -> float:
    """The share of a length mixture's fragments in the counter's short window (90-150 bp)."""
    return simulate.short_fragment_share(components, CountFilters.short_min, CountFilters.short_max)


def weight(mode: float) -> float:
    """The mean size weight of a tumour fragment whose mononucleosomal peak is at ``mode`` bp."""
    return 1 + (normalize.SHORT_FRAGMENT_WEIGHT - 1) * short_share(simulate.tumor_fragment_model(mode))


def enrichment(mode: float) -> float:
    """How much richer in 90-150 bp fragments the tumour's DNA is than normal DNA."""
    return short_share(simulate.tumor_fragment_model(mode)) / short_share(simulate.FRAGMENT_LENGTH_MODEL["normal"])


def specs(grid_args, layouts, seeds: int) -> list[tuple[validation.Spec, tuple[int, int | None]]]:
    """The samples, simulated and counted like validate_call.py's (``grid_args``: its options), each with its
    condition."""
    chosen = []
    for mode, layout in layouts.items():
        for fraction, copy_numbers, conditions in SETS:
            for (tumor_mode, amplicon_mode), cn, replicate in itertools.product(conditions, copy_numbers,
                                                                                 range(1, seeds + 1)):
                name = (f"fragsize-{mode}-tf{fraction:g}-cn{cn}-t{tumor_mode}"
                        f"-a{amplicon_mode or tumor_mode}-r{replicate}")
                sim = validation.simulation_args(mode, fraction, cn, False, True, grid_args, layout)
                sim += ["--tumor-fragment-mode", tumor_mode]
                sim += [] if amplicon_mode is None else ["--amplicon-fragment-mode", amplicon_mode]
                key = validation.cache_key(name, sim, layout)
                counts = layout["dir"] / "counts" / f"{name}.{key}"
                chosen.append((validation.Spec(
                    name=name, group="fragment", mode=mode, tf=fraction, cn=cn, arm_gain=False, crc=True,
                    replicate=replicate, seed=validation.sample_seed(name), simulate_args=sim,
                    counts=f"{counts}.counts.tsv", truth=f"{counts}.truth.json", pon=str(layout["pon"]),
                    bins=str(layout["bins"]), calls=str(layout["dir"] / "fragment_size_calls")),
                    (tumor_mode, amplicon_mode)))
    return chosen


def report(results: list[dict], conditions: dict, args, seconds: float) -> str:
    """The markdown table; ``conditions``: each sample's (tumour peak, amplicon peak) by name."""
    rows = [{**validation.flatten(result), "condition": conditions[result["spec"]["name"]]} for result in results]
    lines = [
        "# Fragment-size variation and the size-weighted second look", "",
        f"Generated by `benchmarks/fragment_size_variation.py --seeds {args.seeds}` ({len(rows)} samples, "
        f"{seconds / 60:.1f} min), {time.strftime('%Y-%m-%d')}, her2cnv commit "
        f"`{validation.machine_info()['commit']}`.", "",
        "Every sample: colorectal background (+8q, +13, +20q, -18), focal ERBB2 amplicon "
        "(300 kb) at the tumour CN shown, no 17q gain; validate_call.py's reference, bins and panels of normals "
        f"(low-pass WGS 0.5x; panel 500x), {args.seeds} seeds per row. TF 2%: mostly below the all-fragment "
        "detection limit, where the second look decides; TF 2.5%: amplicons shorter than the arms on tumours "
        "without a high-level amplification, the case that could push an estimate over 8. The tumour's mononucleosomal "
        "peak is moved "
        "from 148 bp (the default: tumour DNA 2.9-fold enriched in 90-150 bp); 'amplicon' gives the peak of tumour "
        "fragments inside the ERBB2 amplicon where it differs from the rest of the tumour.", "",
        "Columns: enrichment = tumour over normal share of 90-150 bp fragments on the arms; expected CN = what the "
        "second look should estimate, CN x w_amplicon / w_arms (the module docstring); TF detected = by all "
        "fragments; second look = samples whose status came from the size-weighted channel; their median tumour "
        "CN and how many of their 95% intervals cover the true CN and the expected one.", "",
        f"Status letters as in validation.md: {validation.LEGEND}.", "",
        "| mode | TF | tumour peak (bp) | amplicon peak | enrichment | CN | expected CN | statuses | TF detected "
        "| second look | its tumour CN (median) | CI covers true CN | CI covers expected | high-level |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    cells = {}
    order = [(fraction, condition) for fraction, _, conditions in SETS for condition in conditions]
    for row in sorted(rows, key=lambda r: (validation.MODE_ORDER[r["mode"]], order.index((r["tf"], r["condition"])),
                                           r["cn"], r["replicate"])):
        cells.setdefault((row["mode"], row["tf"], row["condition"], row["cn"]), []).append(row)
    adverse, above = [], []
    for (mode, fraction, (tumor_mode, amplicon_mode), cn), chosen in cells.items():
        ratio = weight(amplicon_mode or tumor_mode) / weight(tumor_mode)
        second = [r for r in chosen if r.get("called_on") == "size_weighted"]
        covered = [r for r in second if r["tumor_cn_lo"] is not None]
        high = sum(r["status"] == "high_level_amplification" for r in chosen)
        where = f"{mode} TF {fraction:.1%} tumour peak {tumor_mode}, amplicon {amplicon_mode or tumor_mode}, CN {cn}"
        if cn < validation.HIGH and high:
            adverse.append(f"{where}: {high}")
        above += [f"{where}: {r['tumor_cn']:.1f} (95% CI {r['tumor_cn_lo']:.1f}-{r['tumor_cn_hi']:.1f}), {r['status']}"
                  for r in covered if cn < validation.HIGH <= r["tumor_cn"]]
        lines.append("| " + " | ".join([
            mode, f"{fraction:.1%}", str(tumor_mode), "same" if amplicon_mode is None else str(amplicon_mode),
            f"{enrichment(tumor_mode):.1f}x", str(cn), f"{cn * ratio:.1f}",
            "".join(r["code"] for r in chosen), f"{sum(bool(r['tf_detected']) for r in chosen)}/{len(chosen)}",
            f"{len(second)}/{len(chosen)}",
            f"{statistics.median(r['tumor_cn'] for r in second):.1f}" if second else "–",
            f"{sum(r['tumor_cn_lo'] <= cn <= r['tumor_cn_hi'] for r in covered)}/{len(covered)}",
            f"{sum(r['tumor_cn_lo'] <= cn * ratio <= r['tumor_cn_hi'] for r in covered)}/{len(covered)}",
            f"{high}/{len(chosen)}"]) + " |")
    lines += ["", "High-level calls below CN 8: " + ("; ".join(adverse) if adverse else "none") + ".", "",
              "Second-look estimates >= 8 for tumours below CN 8: " + ("; ".join(above) if above else "none") + ".",
              ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="replicates per row")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=validation.DEFAULT_WORKDIR,
                        help="validate_call.py's cache folder")
    parser.add_argument("--out", type=Path, default=validation.DEFAULT_OUT / "fragment_size_variation.md")
    args = parser.parse_args()
    grid_args = validation.build_parser().parse_args(["--workdir", str(args.workdir)])
    started = time.perf_counter()
    import her2cnv.cli  # noqa: F401  loaded once here, so forked workers share one version of the code

    with ProcessPoolExecutor(args.workers) as pool:
        reference, layouts = validation.setup(grid_args, pool)
        chosen = specs(grid_args, layouts, args.seeds)
        conditions = {spec.name: condition for spec, condition in chosen}
        for layout in layouts.values():
            shutil.rmtree(layout["dir"] / "fragment_size_calls", ignore_errors=True)  # calls are redone every run
        validation.log(f"{len(chosen)} samples ({sum(not Path(s.counts).exists() for s, _ in chosen)} to simulate)")
        jobs = [pool.submit(validation.run_spec, spec, str(reference)) for spec, _ in chosen]
        results = [job.result() for job in as_completed(jobs)]
    errors = [r for r in results if "error" in r]
    if errors:
        sys.exit(f"{len(errors)} samples failed, e.g. {errors[0]['spec']['name']}: {errors[0]['error']}")
    text = report(results, conditions, args, time.perf_counter() - started)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
