"""``her2cnv monitor``: a patient's timepoints -> change from baseline, response, and an HTML report."""
from pathlib import Path

from .. import io, monitor, plot, report
from ..errors import InputError
from ..version import __version__


def add_parser(subparsers, common):
    parser = subparsers.add_parser("monitor", parents=[common], help="track one patient's calls over time",
                                   description="Order a patient's calls by collection date and report the change "
                                               "in ERBB2 plasma copy number, tumour fraction and tumour copy number "
                                               "from baseline, with a response category, as JSON, TSV and HTML.")
    parser.add_argument("calls", nargs="+", help="SAMPLE.call.json files of one patient (any order)")
    parser.add_argument("-o", "--outdir", required=True, help="directory for PATIENT.monitor.json/.tsv/.html")
    parser.add_argument("--patient", help="patient identifier (default: from the calls or the sample sheet)")
    parser.add_argument("--dates", nargs="+", metavar="DATE", help="collection dates (YYYY-MM-DD), one per call file")
    parser.add_argument("--sample-sheet", help="the workflow's sample sheet (TSV with sample, patient, date, role "
                                                 "and bam columns) to take patients and dates from")
    parser.add_argument("--thresholds", help="TOML file overriding reference/thresholds.toml")
    parser.set_defaults(handler=run)


def resolve(calls: list[dict], sources: list[str], args) -> tuple[str, list[str]]:
    """The patient and each call's date: options first, then the sample sheet, then the calls themselves."""
    if args.dates and len(args.dates) != len(calls):
        raise InputError(f"--dates gives {len(args.dates)} dates for {len(calls)} call files")
    sheet = io.read_sample_sheet(args.sample_sheet).set_index("sample") if args.sample_sheet else None
    dates, patients = [], set()
    for i, (call, source) in enumerate(zip(calls, sources)):
        row = sheet.loc[call["sample"]] if sheet is not None and call["sample"] in sheet.index else None
        if row is not None:  # a sheet may fill in what a call lacks, never contradict what it records
            for field in ("patient", "date"):
                if call.get(field) not in (None, row[field]) and row[field] not in ("NA", ""):
                    raise InputError(f"{args.sample_sheet}: gives sample {call['sample']} {field} {row[field]}, "
                                     f"but {source} records {call[field]}")
        date = args.dates[i] if args.dates else (row["date"] if row is not None else call.get("date"))
        if args.dates and call.get("date") not in (None, monitor.check_date(args.dates[i], "--dates")):
            raise InputError(f"--dates gives sample {call['sample']} {args.dates[i]}, but {source} records "
                             f"{call['date']}; a recorded date is not overridden")
        if date in (None, "NA", ""):
            raise InputError(f"{source}: no collection date for sample {call['sample']} (give --dates, "
                             "--sample-sheet, or 'her2cnv call --date')")
        dates.append(monitor.check_date(date, source))
        patient = row["patient"] if row is not None else call.get("patient")
        if patient not in (None, "NA", ""):
            patients.add(patient)
    if args.patient:
        others = sorted(patients - {args.patient})
        if others:  # --patient names calls that name none; it never merges another patient's series into this one
            raise InputError(f"the calls name patient(s) {', '.join(map(str, others))}, not {args.patient}; "
                             "monitor one patient at a time")
        return monitor.check_patient(args.patient), dates
    if len(patients) != 1:
        raise InputError(f"the calls name {len(patients) or 'no'} patient(s) {sorted(map(str, patients))}; "
                         "monitor one patient at a time, or give --patient for calls that name none")
    return monitor.check_patient(patients.pop()), dates


def run(args):
    calls = [io.read_call(path) for path in args.calls]
    patient, dates = resolve(calls, args.calls, args)
    points = [monitor.timepoint(call, date, source) for call, date, source in zip(calls, dates, args.calls)]
    monitor.check_comparable(points, args.calls)
    thresholds = io.read_thresholds(args.thresholds)
    rows = monitor.track_patient(points, thresholds)
    provenance = {"tool": "her2cnv", "version": __version__, "command": "monitor",
                  "parameters": {"thresholds": vars(thresholds)},
                  "inputs": [io.file_fingerprint(path) for path in args.calls]}
    document = io.monitor_document(patient, rows, provenance)
    outdir = io.make_directory(args.outdir)
    by_sample = {call["sample"]: call for call in calls}
    ordered = [by_sample[row["sample"]] for row in rows]
    figures = {call["sample"]: io.read_optional_bytes(Path(source).with_name(f"{call['sample']}.chr17.png"))
               for call, source in zip(calls, args.calls)}
    figures["trend"] = plot.trend_plot(
        patient, [row["date"] for row in rows], [c["erbb2"]["plasma_copy_number"] for c in ordered],
        [c["erbb2"]["plasma_copy_number_ci95"] for c in ordered],
        [c["tumor_fraction"]["estimate"] if c["tumor_fraction"]["detected"] else None for c in ordered],
        [c["tumor_fraction"]["ci95"] for c in ordered], [c["tumor_fraction"]["detection_limit"] for c in ordered],
        [row["qc_pass"] for row in rows])
    with io.output_set():
        io.write_monitor(io.output_path(outdir, patient, "monitor.json"),
                         io.output_path(outdir, patient, "monitor.tsv"), document)
        io.write_text(io.output_path(outdir, patient, "monitor.html"),
                      report.render_patient_report(document, by_sample, figures))
