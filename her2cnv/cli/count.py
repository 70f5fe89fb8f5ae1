"""``her2cnv count``: fragments per bin from one BAM/CRAM."""
import logging
from dataclasses import asdict

from .. import counts, io
from .progress import progress_bar

log = logging.getLogger(__name__)
IMPROPER_PAIR_WARNING = 0.05  # bwa mem's own window left 12% of simulated cfDNA's passing records improper


def add_parser(subparsers, common):
    parser = subparsers.add_parser("count", parents=[common], help="count fragments per bin",
                                   description="Count each fragment once (a proper pair at its midpoint, a "
                                               "single-end read at its leftmost base) into the bins, with "
                                               "per-reason QC of the records left out.")
    parser.add_argument("bam", help="coordinate-sorted BAM, CRAM or SAM")
    parser.add_argument("--bins", required=True, help="bins TSV from 'her2cnv bins'")
    parser.add_argument("-o", "--output", required=True, help="counts TSV to write (.gz to compress)")
    parser.add_argument("--sample", help="sample name (default: the @RG SM tag, else the file name)")
    parser.add_argument("--reference", help="reference FASTA (required for CRAM)")
    parser.add_argument("--min-mapq", type=int, default=counts.CountFilters.min_mapq,
                        help="minimum mapping quality (default %(default)s)")
    parser.add_argument("--exclude-flags", type=sam_flags, default=counts.DEFAULT_EXCLUDE_FLAGS,
                        help="records with any of these SAM flag bits are left out "
                             "(default 0x%(default)X: unmapped, secondary, QC-fail, duplicate, supplementary)")
    parser.add_argument("--fragment-length", metavar="MIN-MAX",
                        help="count only fragments in this length window, e.g. 90-150 (default: all lengths)")
    parser.add_argument("--short-length", metavar="MIN-MAX", default="90-150",
                        help="window for the short-fragment channel (default %(default)s)")
    parser.add_argument("--pon", help="panel of normals the counts are for: refuse, before counting, bins or "
                                      "filters other than its normals were counted with ('call' would refuse them)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="extra reading threads (default %(default)s): an indexed BAM/CRAM is read by N + 1 "
                             "threads (at most one per core) over regions of the genome, each inflating its own "
                             "blocks; without an index, "
                             "N BGZF decompression threads help the one reader, which gains less (README, "
                             "'How counting works'). The counts are the same for every N")
    parser.set_defaults(handler=run)


def sam_flags(text: str) -> int:
    """SAM flag bits, decimal or 0x hexadecimal (argparse names this function in its error)."""
    return int(text, 0)


def run(args):
    bins, _ = io.read_bins(args.bins)
    window = counts.parse_length_window(args.fragment_length, "--fragment-length") if args.fragment_length else (0, counts.NO_MAXIMUM)
    short = counts.parse_length_window(args.short_length, "--short-length")
    filters = counts.CountFilters(min_mapq=args.min_mapq, exclude_flags=args.exclude_flags,
                                  min_length=window[0], max_length=window[1], short_min=short[0], short_max=short[1])
    if args.pon:
        from .. import pon  # not at the top: a plain count need not import the panel's modules (~40 ms)
        panels, metadata = io.read_panel(args.pon)
        pon.check_counted_like_panel(bins, asdict(filters), panels["all"], metadata["count_filters"], args.bins,
                                     f"{args.bam} (these count options)", args.pon)
    result = count_with_progress(args, bins, filters)
    if result.outcomes["fragments_counted"] == 0:
        log.warning("%s: no fragment passed the filters (see the outcomes in %s)", args.bam, args.output)
    io.write_counts(args.output, result)


def count_with_progress(args, bins, filters):
    """Count ``args.bam`` into ``bins``, with a progress bar on a terminal (shared by 'count' and 'run')."""
    bar = progress_bar(args, f"counting {args.bam}")
    try:
        result = counts.count_bam(args.bam, bins, filters, reference=args.reference, threads=args.threads,
                                  sample=args.sample, progress=bar,
                                  assembly_lengths=io.load_assembly(bins.assembly).contig_lengths)
    finally:
        bar.close()
    outcomes = result.outcomes
    passed = sum(outcomes[key] for key in ("improper_pair", "mate_of_counted_fragment", "outside_fragment_length",
                                           "outside_bins", "fragments_counted"))  # the flag and MAPQ filters
    improper = outcomes["improper_pair"] / max(passed, 1)
    if improper >= IMPROPER_PAIR_WARNING:
        log.warning("%s: %.0f%% of the records that passed the filters are in pairs not flagged proper, which are "
                    "not counted: an aligner flags only "
                    "pairs inside the insert-size window it estimated (bwa mem: most fragments over ~260 bp), so "
                    "count the panel's normals from the same pipeline (README, 'How counting works')",
                    args.bam, 100 * improper)
    return result
