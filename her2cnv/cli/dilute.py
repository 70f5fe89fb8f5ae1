"""``her2cnv dilute``: mix tumour fragments into a normal BAM at a chosen fraction (in-silico dilution)."""
import logging
import os
from collections import Counter
from pathlib import Path

from .. import io, simulate
from ..errors import InputError
from ..types import check_safe_name
from ..version import __version__
from .progress import progress_bar

log = logging.getLogger(__name__)


def add_parser(subparsers, common):
    parser = subparsers.add_parser("dilute", parents=[common], help="mix a tumour BAM into a normal BAM",
                                   description="Take whole fragments (both mates, chosen by a seeded hash of "
                                               "the read name) from a tumour and a normal BAM so tumour fragments "
                                               "are FRACTION of the output. Writes OUT.bam, OUT.bam.bai and "
                                               "OUT.dilution.json (requested and achieved fraction and counts).")
    parser.add_argument("tumor", metavar="TUMOUR.bam", help="coordinate-sorted tumour (or high-TF plasma) BAM")
    parser.add_argument("normal", metavar="NORMAL.bam", help="coordinate-sorted normal BAM, same contigs")
    parser.add_argument("--fraction", type=float, required=True, help="share of output fragments from TUMOUR")
    parser.add_argument("-o", "--output", required=True, help="BAM to write")
    parser.add_argument("--fragments", type=int, help="total fragments (default: the most both inputs allow)")
    parser.add_argument("--seed", type=int, default=simulate.DEFAULT_SEED, help="seed of the read-name hash (default %(default)s)")
    parser.add_argument("--sample", help="@RG SM of the output (default: the output name without .bam)")
    parser.add_argument("--threads", type=int, default=2, help="BAM threads (default %(default)s)")
    parser.set_defaults(handler=run)


def _content(fingerprint: dict) -> tuple:
    """What two names of one BAM (or a copy) share: size and checksum, not the path."""
    return fingerprint["size"], fingerprint["checksum"]


def run(args):
    sample = args.sample or Path(args.output).name.removesuffix(".bam")
    try:
        check_safe_name(sample)
    except ValueError as error:
        raise InputError(f"--sample: {error}" if args.sample else
                         f"{args.output}: {error} (from the output name); set one with --sample") from None
    simulate.check_seed(args.seed)
    # taken once, for this check and for the summary (a missing input is reported by the scan below)
    inputs = {role: io.file_fingerprint(path) for role, path in (("tumor", args.tumor), ("normal", args.normal))
              if Path(path).is_file()}
    if len(inputs) == 2 and (os.path.samefile(args.tumor, args.normal) or
                             _content(inputs["tumor"]) == _content(inputs["normal"])):
        raise InputError(f"{args.normal}: is the same file as {args.tumor} (or a copy); give a tumour and a normal BAM")
    bar = progress_bar(args, f"diluting into {args.output}")
    try:
        tumor_header, tumor_hashes = simulate.scan_fragments(args.tumor, args.seed, args.threads)
        bar(0.25)
        normal_header, normal_hashes = simulate.scan_fragments(args.normal, args.seed, args.threads)
        bar(0.5)
        simulate.check_same_contigs(args.tumor, tumor_header, args.normal, normal_header)
        plan = simulate.plan_dilution(tumor_hashes, normal_hashes, args.fraction, args.fragments, args.seed)
        tally = Counter()

        def records():
            for n, record in enumerate(simulate.dilution_records(args.tumor, args.normal, plan, tally, args.threads)):
                if not n % 100_000:
                    bar(0.5 + 0.5 * (tally["tumor"] + tally["normal"]) / (plan.n_tumor + plan.n_normal))
                yield record

        io.write_alignments(args.output, simulate.mixed_header(normal_header, tumor_header, sample), records(),
                            args.threads)
    finally:
        bar.close()
    summary = simulate.dilution_summary(plan, tally, {
        "format": io.DILUTION_FORMAT, "version": __version__, "sample": sample,
        "tumor": inputs["tumor"], "normal": inputs["normal"],
        "requested_fragments": args.fragments})
    io.write_json(io.beside_output(args.output, "dilution.json"), summary)
    log.info("%s: %d fragments, tumour fraction %.4f (requested %g)", Path(args.output), summary["n_fragments"],
             summary["achieved_fraction"] or 0.0, args.fraction)
