"""``her2cnv pon``: build a panel of normals from healthy-donor counts."""
import logging
from dataclasses import asdict

import numpy as np

from .. import io, normalize, pon
from ..errors import InputError
from ..version import __version__

log = logging.getLogger(__name__)


def add_parser(subparsers, common):
    parser = subparsers.add_parser("pon", parents=[common], help="build a panel of normals",
                                   description="Build a panel of normals (reference depth, masks, denoising "
                                               "components, cross-fitted null) from normals' counts made with "
                                               "the same bins. Written as .npz without pickles.")
    parser.add_argument("counts", nargs="+", help="counts TSVs of healthy-donor plasma ('her2cnv count')")
    parser.add_argument("-o", "--output", required=True, help="panel file to write (.npz)")
    parser.add_argument("--keep-outliers", action="store_true", help="keep normals flagged as outliers")
    parser.set_defaults(handler=run)


def run(args):
    normals = [io.read_counts(path) for path in args.counts]
    first = normals[0]
    for path, normal in zip(args.counts, normals):
        if not isinstance(normal.metadata.get("filters"), dict):
            raise InputError(f"{path}: the counts do not record their count filters (made by another tool, or "
                             "edited?); count the normal with 'her2cnv count'")
        if normal.bins.checksum != first.bins.checksum:
            raise InputError(f"{path}: counted with other bins than {args.counts[0]}; count all normals with one "
                             "bins file")
        if normal.metadata.get("filters") != first.metadata.get("filters"):
            raise InputError(f"{path}: counted with other filters than {args.counts[0]} ("
                             f"{pon.filter_differences(normal.metadata.get('filters'), first.metadata.get('filters'))}"
                             "); count all normals with the same options")
    # A failed or empty library is flat after GC correction, so no outlier test flags it, yet the panel learns a
    # denoising component from it that can erase a patient's ERBB2 amplification: a normal must have the
    # fragments a sample needs to pass QC.
    minimum = io.read_thresholds().min_fragments
    for path, normal in zip(args.counts, normals):
        if normal.outcomes["fragments_counted"] < minimum:
            raise InputError(f"{path}: normal {normal.sample} has only {normal.outcomes['fragments_counted']:,} "
                             f"fragments counted (a sample needs {minimum:,}); leave out failed or empty libraries")
    by_name, by_counts = {}, {}
    for path, normal in zip(args.counts, normals):
        if normal.sample in by_name:
            raise InputError(f"{path}: sample {normal.sample} is also in {by_name[normal.sample]}")
        by_name[normal.sample] = path
        counted = (normal.count.tobytes(), normal.short_count.tobytes())  # one library under two names: no spread
        if counted in by_counts:
            raise InputError(f"{path}: holds the same counts as {by_counts[counted]} (one library under two names?)")
        by_counts[counted] = path
    assembly = io.load_assembly(first.bins.assembly)
    panels, reports = {}, {}
    for channel in normalize.CHANNELS:
        # outliers are judged once, on all fragments; the other channels use the same normals
        used = [n for n in normals if n.sample in panels["all"].sample_names] if panels else normals
        matrix = np.vstack([normalize.channel_counts(normal, channel) for normal in used])
        panels[channel], reports[channel] = pon.build_panel(
            matrix, first.bins, tuple(n.sample for n in used), assembly=assembly, channel=channel,
            keep_outliers=args.keep_outliers or bool(panels))
    report = reports["all"]
    if len(report.used) < pon.RECOMMENDED_NORMALS:
        log.warning("panel of normals built from %d normals; %d-50 are recommended", len(report.used),
                    pon.RECOMMENDED_NORMALS)
    for sample, reason in report.outliers.items():
        log.warning("normal %s is an outlier: %s (%s)", sample, reason, "kept" if args.keep_outliers else "left out")
    for sample, n_bins in report.excluded_bins.items():
        log.info("normal %s: %d bins in a copy-number change of its own, left out of the reference there", sample,
                 n_bins)
    log.info("panel: %d normals, %d components, noise (MAPD) %.3f after GC correction, %.3f after the panel, "
             "arm-level error %.4f log2", len(report.used), report.n_components, report.noise_gc_only,
             report.noise_denoised, report.arm_level_error)
    metadata = {
        "version": __version__, "assembly": first.bins.assembly, "bins_checksum": first.bins.checksum,
        "count_filters": first.metadata.get("filters"),
        "samples": list(panels["all"].sample_names), "channels": list(panels),
        # how deep the reference is: 'call' refuses samples far deeper (thresholds.toml, max_panel_depth_ratio)
        "normal_fragments": float(np.median([normal.outcomes["fragments_counted"] for normal in normals
                                             if normal.sample in panels["all"].sample_names])),
        "reports": {channel: asdict(r) for channel, r in reports.items()},
        "parameters": {"keep_outliers": args.keep_outliers},
        "inputs": [io.file_fingerprint(path) for path in args.counts],
    }
    io.write_panel(args.output, panels, metadata)
