"""``her2cnv normalize``: one sample's counts -> denoised log2 copy ratios against a panel."""
from .. import io, normalize, pon
from ..version import __version__


def add_parser(subparsers, common):
    parser = subparsers.add_parser("normalize", parents=[common], help="normalise counts against a panel",
                                   description="GC-correct a sample's counts, divide by the panel's reference, "
                                               "project out the panel's components, and write per-bin log2 "
                                               "ratios with weights and the noise (MAPD).")
    parser.add_argument("counts", help="counts TSV from 'her2cnv count'")
    parser.add_argument("--pon", required=True, help="panel of normals from 'her2cnv pon'")
    parser.add_argument("-o", "--output", required=True, help="ratios TSV to write")
    parser.add_argument("--channel", choices=normalize.CHANNELS, default="all",
                        help="all fragments, only the short (tumour-enriched) ones, or all with short ones "
                             f"counted {normalize.SHORT_FRAGMENT_WEIGHT}x (default %(default)s)")
    parser.set_defaults(handler=run)


def run(args):
    counts = io.read_counts(args.counts)
    panels, metadata = io.read_panel(args.pon)
    panel = panels[args.channel]
    pon.check_counted_like_panel(counts.bins, counts.metadata.get("filters"), panel, metadata["count_filters"],
                                 args.counts, args.counts, args.pon)
    profile = normalize.log2_ratios(normalize.channel_counts(counts, args.channel), panel, counts.bins)
    header = {"channel": args.channel, "noise_mapd": round(profile.noise, 5),
              "locus_noise_mapd": round(profile.locus_noise, 5), "gc_bias": round(profile.gc_bias, 5),
              "n_components": profile.n_components,
              "provenance": {"tool": "her2cnv", "version": __version__, "command": "normalize",
                             "counts": io.file_fingerprint(args.counts), "pon": io.file_fingerprint(args.pon)}}
    io.write_ratios(args.output, counts, profile, header)
