"""``her2cnv call`` (counts -> ERBB2 call) and ``her2cnv run`` (BAM -> counts -> ERBB2 call)."""
import logging
from dataclasses import asdict

from .. import call, counts, io, monitor, normalize, plot, pon, report
from ..errors import InputError
from ..version import __version__
from .count import count_with_progress

log = logging.getLogger(__name__)
MIN_GIVEN_FRACTION = 0.001  # --tumor-fraction 1e-300 gave a tumour copy number of 3.8e300


def _add_call_options(parser):
    parser.add_argument("--pon", required=True, help="panel of normals from 'her2cnv pon'")
    parser.add_argument("-o", "--outdir", required=True,
                        help="directory for SAMPLE.call.json, .report.html, .ratios.tsv, .seg, PNGs (made if missing)")
    parser.add_argument("--tumor-fraction", type=float, help="external tumour fraction (0-1), e.g. from the highest "
                                                             "somatic VAF; recorded as such instead of fitted")
    parser.add_argument("--thresholds", help="TOML file overriding reference/thresholds.toml")
    parser.add_argument("--patient", help="patient identifier, recorded for 'her2cnv monitor'")
    parser.add_argument("--date", help="collection date (YYYY-MM-DD), recorded for 'her2cnv monitor'")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    parser.set_defaults(handler=run_call)


def add_parser(subparsers, common):
    parser = subparsers.add_parser("call", parents=[common], help="call ERBB2 from counts",
                                   description="Normalise against the panel, segment, estimate tumour fraction, and "
                                               "call ERBB2 (status, plasma and tumour copy number, focality, limit "
                                               "of detection).")
    parser.add_argument("counts", help="counts TSV from 'her2cnv count'")
    _add_call_options(parser)
    runner = subparsers.add_parser("run", parents=[common], help="count and call one BAM/CRAM",
                                   description="'her2cnv count' then 'her2cnv call' in one command.")
    runner.add_argument("bam", help="coordinate-sorted BAM or CRAM")
    runner.add_argument("--bins", required=True, help="bins TSV the panel was built with")
    runner.add_argument("--sample", help="sample name (default: the @RG SM tag, else the file name)")
    runner.add_argument("--reference", help="reference FASTA (required for CRAM)")
    runner.add_argument("--threads", type=int, default=0,
                        help="extra reading threads for the count, as 'her2cnv count --threads' "
                             "(default %(default)s)")
    _add_call_options(runner)
    runner.set_defaults(handler=run_bam)


def call_inputs(args, bins, source, filters: dict | None, filters_source=None):
    """Check the options, and read the panel (checked against ``bins`` from ``source`` and count ``filters``
    from ``filters_source``, by default the same) and the thresholds: all 'call' needs besides the counts, so
    'run' refuses bad ones before the long count."""
    if args.tumor_fraction is not None and not MIN_GIVEN_FRACTION <= args.tumor_fraction <= 1:
        raise InputError(f"--tumor-fraction must be in [{MIN_GIVEN_FRACTION}, 1] (below it no copy number can be "
                         f"read from plasma), got {args.tumor_fraction}")
    patient, date = monitor.check_patient(args.patient), monitor.check_date(args.date, "--date")
    panels, metadata = io.read_panel(args.pon)
    pon.check_counted_like_panel(bins, filters, panels["all"], metadata["count_filters"], source,
                                 filters_source or source, args.pon)
    return panels, io.read_thresholds(args.thresholds), patient, date


def run_call(args, sample_counts=None, counts_source=None, inputs=None):
    sample_counts = sample_counts or io.read_counts(args.counts)
    counts_source = counts_source or args.counts
    panels, thresholds, patient, date = inputs or call_inputs(args, sample_counts.bins, counts_source,
                                                              sample_counts.metadata.get("filters"))
    assembly = io.load_assembly(panels["all"].assembly)
    outdir = io.make_directory(args.outdir)
    name = sample_counts.sample
    analysis = call.analyse(sample_counts, panels, assembly, thresholds, args.tumor_fraction)
    result, fit, profile, segments = analysis.call, analysis.fit, analysis.profile, analysis.segments
    provenance = {
        "tool": "her2cnv", "version": __version__, "command": args.command,
        "parameters": {"tumor_fraction": args.tumor_fraction, "thresholds": vars(thresholds), "channel": "all",
                       "second_look_channel": "size_weighted",
                       "short_fragment_weight": normalize.SHORT_FRAGMENT_WEIGHT},
        "inputs": {"counts": sample_counts.metadata.get("input") if args.command == "run" else io.file_fingerprint(counts_source),
                   "pon": io.file_fingerprint(args.pon), "pon_normals": len(panels["all"].sample_names),
                   "bins_checksum": sample_counts.bins.checksum, "count_filters": sample_counts.metadata.get("filters")},
    }
    figures = {} if args.no_plots else {
        "genome": plot.genome_plot(profile, segments, sample_counts.bins, fit.baseline_log2,
                                   f"{name}: tumour fraction {_fraction_text(fit)}"),
        "chr17": plot.chr17_plot(profile, segments, sample_counts.bins, fit.baseline_log2, assembly, result),
    }
    document = io.call_document(result, fit, analysis.size_weighted_fit, provenance, patient, date)
    with io.output_set():  # all of a call's files or none: never plots or ratios beside an older call.json
        io.write_ratios(io.output_path(outdir, name, "ratios.tsv"), sample_counts, profile,
                        {"diploid_baseline_log2": round(fit.baseline_log2, 5), "provenance": provenance})
        io.write_segments(io.output_path(outdir, name, "seg"), name, segments, sample_counts.bins, fit.baseline_log2)
        for kind in plot.FIGURES:
            if kind in figures:
                io.write_bytes(io.output_path(outdir, name, f"{kind}.png"), figures[kind])
            else:  # an earlier call's plots must not stand beside this call (report and monitor embed them)
                io.remove_with_set(io.output_path(outdir, name, f"{kind}.png"))
        io.write_text(io.output_path(outdir, name, "report.html"), report.render_sample_report(document, figures))
        io.write_json(io.output_path(outdir, name, "call.json"), document, sort_keys=False)
    log.info("%s: %s (%s)", name, result.status, result.reason)


def _fraction_text(fit) -> str:
    return f"{fit.estimate:.1%}" if fit.detected else f"below detection (< {fit.limit:.1%})"


def run_bam(args):
    bins, _ = io.read_bins(args.bins)
    filters = counts.CountFilters()
    inputs = call_inputs(args, bins, args.bins, asdict(filters), f"{args.bam} ('run' counts with the default filters)")
    sample_counts = count_with_progress(args, bins, filters)
    outdir = io.make_directory(args.outdir)
    with io.output_set():  # the counts too: 'run' leaves all its files or none
        io.write_counts(io.output_path(outdir, sample_counts.sample, "counts.tsv"), sample_counts)
        run_call(args, sample_counts, args.bam, inputs)
