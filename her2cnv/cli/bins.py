"""``her2cnv bins``: genome-wide bins with fine ERBB2 locus bins, or capture-panel target bins."""
from .. import bins, io
from ..errors import InputError
from ..version import __version__


def add_parser(subparsers, common):
    parser = subparsers.add_parser("bins", parents=[common], help="make the bins to count in",
                                   description="Make genome-wide bins plus fine bins over the 17q12 ERBB2 "
                                               "amplicon (or target bins for a capture panel), with GC and N "
                                               "fractions from the FASTA and the amplicon genes each bin overlaps.")
    parser.add_argument("--fasta", required=True, help="reference FASTA with .fai index (GRCh38 or GRCh37)")
    parser.add_argument("-o", "--output", required=True, help="bins TSV to write (.gz to compress)")
    parser.add_argument("--bin-size", type=int, default=bins.DEFAULT_BIN_SIZE,
                        help="genome-wide bin width in bp (default %(default)s)")
    parser.add_argument("--locus-bin-size", type=int, default=bins.DEFAULT_LOCUS_BIN_SIZE,
                        help="bin width over the ERBB2 amplicon locus, <= 10000 (default %(default)s)")
    parser.add_argument("--targets", help="capture panel BED: one bin per merged target instead of genome bins")
    parser.add_argument("--off-target-size", type=int, default=None,
                        help="with --targets, also make off-target bins of about this width between targets")
    parser.set_defaults(handler=run)


def run(args):
    if args.off_target_size is not None and not args.targets:
        raise InputError("--off-target-size makes bins between capture targets: it needs --targets")
    lengths = io.read_fasta_lengths(args.fasta)
    assembly = bins.detect_assembly(lengths, io.load_assemblies(), args.fasta)
    if args.targets:
        targets = io.read_bed(args.targets)
        layout = bins.target_layout(targets["chrom"].to_numpy(), targets["start"].to_numpy(),
                                    targets["end"].to_numpy(), lengths, args.off_target_size, source=args.targets)
    else:
        layout = bins.genome_layout(lengths, assembly, bins.default_contigs(lengths),
                                    args.bin_size, args.locus_bin_size)
    gc, n_fraction = io.read_fasta_composition(args.fasta, *layout[:3])
    result = bins.make_bins(*layout, gc, n_fraction, assembly, lengths)
    provenance = {"tool": "her2cnv", "version": __version__, "command": "bins",
                  "parameters": {"bin_size": args.bin_size, "locus_bin_size": args.locus_bin_size,
                                 "off_target_size": args.off_target_size},
                  "fasta": io.file_fingerprint(args.fasta),
                  "targets": io.file_fingerprint(args.targets) if args.targets else None}
    io.write_bins(args.output, result, provenance)
