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
from . import bins, call, count, dilute, monitor, normalize, pon, report, simulate

SUBCOMMANDS = (bins, count, pon, normalize, call, monitor, report, simulate, dilute)


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
    try:
        args.handler(args)
    except Her2CnvError as error:
        if args.debug:
            raise
        print(f"her2cnv: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("\nher2cnv: error: interrupted; no output was written", file=sys.stderr)
        return 130
    return 0
