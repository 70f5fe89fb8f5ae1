"""``her2cnv summary``: one row per call (status, PCN, TF, tumour CN, QC) for a cohort."""
from .. import io, report
from ..errors import InputError
from ..version import __version__


def add_parser(subparsers, common):
    parser = subparsers.add_parser("summary", parents=[common], help="cohort table of calls",
                                   description="Tabulate SAMPLE.call.json files: one row per sample with status, "
                                               "plasma copy number, tumour fraction, tumour copy number and QC.")
    parser.add_argument("calls", nargs="+", help="SAMPLE.call.json files")
    parser.add_argument("-o", "--output", required=True, help="TSV to write")
    parser.set_defaults(handler=run)


def run(args):
    calls = [io.read_call(path) for path in args.calls]
    first_file = {}
    for call, path in zip(calls, args.calls):
        if call["sample"] in first_file:
            raise InputError(f"{path}: sample {call['sample']} is also the sample of {first_file[call['sample']]}")
        first_file[call["sample"]] = path
    provenance = {"tool": "her2cnv", "version": __version__, "command": "summary",
                  "inputs": [io.file_fingerprint(path) for path in args.calls]}
    io.write_summary(args.output, report.summary_rows(calls), report.SUMMARY_COLUMNS, provenance)
