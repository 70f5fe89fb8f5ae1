"""The ``her2cnv`` command: one subcommand per stage, and the one place errors are printed.

Exit status: 0 success; 1 a failure of the environment (unwritable output, full
disk); 2 bad input or usage (missing, malformed or incompatible files); 130
interrupted. ``--debug`` shows the traceback instead of the one-line message.
Any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys

from ..errors import Her2CnvError
from ..version import __version__
from . import bins, call, count, dilute, monitor, normalize, pon, report, simulate, summary

SUBCOMMANDS = (bins, count, pon, normalize, call, monitor, report, summary, simulate, dilute)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="her2cnv", description="ctDNA copy-number caller for ERBB2 (HER2) amplification.")
    parser.add_argument("--version", action="version", version=f"her2cnv {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    common.add_argument("--quiet", action="store_true", help="no progress bar and only warnings")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="her2cnv: %(levelname)s: %(message)s",
                        level=logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO,
                        force=True)
    _htslib_messages(args.debug)
    try:
        args.handler(args)
    except Her2CnvError as error:
        if args.debug:
            raise
        message = " ".join(str(error).splitlines())  # one line, whatever the library put in it
        print(f"her2cnv: error: {message}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        if args.debug:
            raise
        newline = "\n" if sys.stderr.isatty() else ""  # on a terminal, end the line the echoed ^C is on
        print(f"{newline}her2cnv: error: interrupted; no output was written", file=sys.stderr)
        return 130
    return 0


def _htslib_messages(debug: bool) -> None:
    """htslib prints its own errors on stderr; her2cnv reports each failure as one line naming the
    file, so htslib's own messages are shown only with --debug."""
    import pysam

    pysam.set_verbosity(3 if debug else 0)  # 3: htslib's default (warnings and errors); 0: silent
