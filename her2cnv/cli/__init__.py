"""The ``her2cnv`` command: one subcommand per stage, and the one place errors are printed.

Exit status: 0 success; 1 a failure of the environment (unwritable output, full
disk); 2 bad input or usage (missing, malformed or incompatible files); 130
interrupted. ``--debug`` shows the traceback instead of the one-line message.
Any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

from ..errors import Her2CnvError
from ..version import __version__

# The module in her2cnv.cli that defines each command, in the order 'her2cnv --help' lists them.
COMMAND_MODULES = {"bins": "bins", "count": "count", "pon": "pon", "normalize": "normalize", "call": "call",
                   "run": "call", "monitor": "monitor", "report": "report", "summary": "summary",
                   "simulate": "simulate", "dilute": "dilute"}


class Parser(argparse.ArgumentParser):
    """Usage errors in the one-line form of every other error (argparse prints the usage block first)."""

    def error(self, message):
        where = "" if self.prog == "her2cnv" else f"{self.prog}: "  # a subcommand's parser names it
        self.exit(2, f"her2cnv: error: {where}{message} (see '{self.prog} --help')\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of ``command``'s module when that names one: a command
    then does not pay for importing what the others need (pandas, for one, which 'count' never uses)."""
    parser = Parser(prog="her2cnv", description="ctDNA copy-number caller for ERBB2 (HER2) amplification.")
    parser.add_argument("--version", action="version", version=f"her2cnv {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    common.add_argument("--quiet", action="store_true", help="no progress bar and only warnings")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else dict.fromkeys(COMMAND_MODULES.values())
    for name in modules:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # a command comes first; before one, only -h and --version, which need every command's parser
    parser = build_parser(str(argv[0]) if argv and not str(argv[0]).startswith("-") else None)
    args = parser.parse_args(argv)
    logging.basicConfig(format="her2cnv: %(levelname)s: %(message)s",
                        level=logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO,
                        force=True)
    _htslib_messages(args.debug)
    from .. import io  # after parsing: --help and --version need none of numpy

    previous_handler = signal.signal(signal.SIGTERM, _terminate) if _in_main_thread() else None
    renamed_before = io.renamed_outputs()
    io.forget_created_directories()
    try:
        io.protect_inputs(_input_files(args))
        for name in OUTPUT_OPTIONS:  # checked again when written; here before any work
            if isinstance(getattr(args, name, None), str):
                io.refuse_overwriting_inputs(getattr(args, name))
        # a single output file: its place, before any work ('simulate cohort -o' names a directory it makes)
        if isinstance(getattr(args, "output", None), str) and not getattr(args, "output_is_directory", False):
            io.check_output_path(args.output)
        args.handler(args)
    except Her2CnvError as error:
        io.remove_created_directories()
        if args.debug:
            raise
        message = " ".join(str(error).splitlines())  # one line, whatever the library put in it
        print(f"her2cnv: error: {message}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt as interruption:
        io.remove_created_directories()
        if args.debug:
            raise
        newline = "\n" if sys.stderr.isatty() else ""  # on a terminal, end the line the echoed ^C is on
        renamed = io.renamed_outputs() - renamed_before
        written = f"{renamed} complete output file(s) had been written, none partial" if renamed else \
            "no output was written"
        print(f"{newline}her2cnv: error: {str(interruption) or 'interrupted'}; {written}", file=sys.stderr)
        return 143 if isinstance(interruption, Terminated) else 130
    finally:
        io.protect_inputs(())  # the protection is this command's: callers of main() in one process go on freely
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's cancel, Snakemake stopping a job): unwound like Ctrl-C, so every temporary output
    is removed on the way out, instead of the process dying where it stands and leaving them."""


def _terminate(signal_number, frame):
    raise Terminated("terminated (SIGTERM)")


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


# The options that name outputs; every other option or argument naming an existing file is an input.
OUTPUT_OPTIONS = ("output", "outdir", "truth")


def _input_files(args) -> list[str]:
    """The existing files among the command's arguments, other than its outputs: io refuses to write over them."""
    files = []
    for name, value in vars(args).items():
        if name in OUTPUT_OPTIONS:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (str, os.PathLike)) and os.path.isfile(item):
                files.append(item)
    return files


def _htslib_messages(debug: bool) -> None:
    """htslib prints its own errors on stderr; her2cnv reports each failure as one line naming the
    file, so htslib's own messages are shown only with --debug."""
    import pysam

    pysam.set_verbosity(3 if debug else 0)  # 3: htslib's default (warnings and errors); 0: silent
