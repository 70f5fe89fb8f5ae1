"""``her2cnv report``: the single-sample HTML report of a call (``call`` writes it too)."""
from pathlib import Path

from .. import io, plot, report


def add_parser(subparsers, common):
    parser = subparsers.add_parser("report", parents=[common], help="HTML report of one call",
                                   description="Render SAMPLE.call.json (and the PNG figures beside it) as a "
                                               "self-contained HTML page.")
    parser.add_argument("call", help="SAMPLE.call.json from 'her2cnv call'")
    parser.add_argument("-o", "--output", required=True, help="HTML file to write")
    parser.set_defaults(handler=run)


def figures_beside(call_path, sample: str) -> dict:
    """The call's PNG figures, read from its directory when present."""
    return {kind: io.read_optional_bytes(Path(call_path).with_name(f"{sample}.{kind}.png"))
            for kind in plot.FIGURES}


def run(args):
    call = io.read_call(args.call)
    io.write_text(args.output, report.render_sample_report(call, figures_beside(args.call, call["sample"])))
