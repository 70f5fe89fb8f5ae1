# Configuration and sample sheet: validated before any job runs, with one clear message per problem.
import contextlib
import csv
import datetime
import io
import os
import re
import shlex

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

SAFE_NAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
)  # used with fullmatch: "$" would let a final "\n" through
COLUMNS = ["sample", "patient", "date", "role", "bam"]
OPTIONAL_COLUMNS = [
    "tumor_fraction"
]  # a plasma sample's own estimate, e.g. from variant allele fractions
OUTDIR = config["outdir"]
LOGS = f"{OUTDIR}/logs"  # with the results: runs into other output directories keep their own logs
DEMO = config["demo"]
PLOTS = "--no-plots" not in config["call_options"]


DEMO_REFERENCE = os.path.join(DEMO["directory"], "reference.fa")


def in_demo_directory(path):
    """True for BAMs that the demo's simulate_cohort rule writes."""
    return os.path.dirname(os.path.normpath(path)) == os.path.normpath(
        DEMO["directory"]
    )


def config_problems():
    """Problems of the config itself: the reference, and extra options the commands would refuse."""
    problems = []
    if DEMO["simulate"]:
        # the demo writes its own reference: never let it write over a file the user named
        if os.path.normpath(config["reference"]) != os.path.normpath(DEMO_REFERENCE):
            problems.append(
                f"config: reference: {config['reference']} is not the demo's {DEMO_REFERENCE}, "
                "which demo.simulate: true writes; set demo: {simulate: false} for your own data"
            )
    elif not os.path.isfile(config["reference"]):
        problems.append(f"config: reference FASTA {config['reference']} does not exist")
    for key, placeholders in (
        ("count_options", ["count", "x.bam", "--bins", "x", "-o", "x"]),
        ("call_options", ["call", "x", "--pon", "x", "-o", "x"]),
    ):
        parsed, refusal = parse_command(placeholders + shlex.split(config[key]))
        if refusal:
            problems.append(f"config: {key}: {refusal}")
        elif (
            getattr(parsed, "tumor_fraction", None) is not None
        ):  # however spelt: --tumor-frac=0.1
            problems.append(
                f"config: {key}: a tumour fraction would apply to every sample, normals too; "
                "give each plasma sample's in the sheet's tumor_fraction column"
            )
    return problems


def parse_command(arguments):
    """(her2cnv's parse of these arguments, its usage error or None); (None, None) where her2cnv is not
    importable here (a --use-conda run): the job reports any error."""
    try:
        from her2cnv.cli import build_parser
    except ImportError:
        return None, None
    message = io.StringIO()
    try:
        with contextlib.redirect_stderr(message):
            return build_parser(arguments[0]).parse_args(arguments), None
    except SystemExit:
        return None, message.getvalue().strip().removeprefix("her2cnv: error: ")


MIN_TUMOR_FRACTION = (
    0.001  # as 'her2cnv call --tumor-fraction' (cli/call.py MIN_GIVEN_FRACTION)
)


def tumor_fraction_problem(row):
    """What is wrong with the row's tumor_fraction, or None: NA, or a fraction in [0.001, 1] for plasma."""
    value = getattr(row, "tumor_fraction", "NA")
    if value in ("", "NA"):
        return None
    if row.role != "plasma":
        return f"a tumour fraction ({value}) is given for a {row.role} sample"
    try:
        fraction = float(value)
    except ValueError:
        fraction = float("nan")
    if not MIN_TUMOR_FRACTION <= fraction <= 1:
        return f"tumor_fraction {value!r} is not a fraction in [{MIN_TUMOR_FRACTION}, 1] or NA"
    return None


def same_file(path):
    """A key that two names of one file share (links, relative and absolute paths)."""
    try:
        status = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (status.st_dev, status.st_ino)


def sheet_problems(path, sheet, lines):
    """Every problem of the sheet's rows, one line each, naming the line."""
    problems, dates, files = [], {}, {}
    for line, row in zip(lines, sheet.itertuples()):
        where = f"{path}: line {line}"
        if not SAFE_NAME.fullmatch(row.sample):
            problems.append(
                f"{where}: sample name {row.sample!r} is not safe as a file name "
                "(letters, digits, '.', '_', '-'; starting with a letter or digit)"
            )
        if row.role not in ("normal", "plasma"):
            problems.append(f"{where}: unknown role {row.role!r} (normal or plasma)")
        if row.patient != "NA" and not SAFE_NAME.fullmatch(row.patient):
            problems.append(
                f"{where}: patient {row.patient!r} is not safe as a file name"
            )
        if row.role == "plasma":
            try:
                date = (
                    datetime.date.fromisoformat(row.date)
                    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", row.date)
                    else None
                )
            except ValueError:
                date = None
            if row.patient == "NA" or date is None:
                problems.append(
                    f"{where}: plasma sample {row.sample} needs a patient and a valid YYYY-MM-DD date"
                )
            elif (row.patient, date) in dates:
                problems.append(
                    f"{where}: patient {row.patient} already has a sample on {row.date} "
                    f"({dates[row.patient, date]}); a series needs one sample per date"
                )
            else:
                dates[row.patient, date] = row.sample
        simulated = DEMO["simulate"] and in_demo_directory(row.bam)
        if not simulated and not os.path.isfile(row.bam):
            problems.append(
                f"{where}: BAM/CRAM {row.bam} of sample {row.sample} does not exist"
            )
        elif (key := same_file(row.bam)) in files:
            first_line, first_role = files[key]
            problems.append(
                f"{where}: BAM/CRAM {row.bam} is the file of line {first_line} too; "
                + (
                    "a plasma sample listed as a normal would enter the panel of normals"
                    if {first_role, row.role} == {"normal", "plasma"}
                    else "one library would be counted as two samples"
                )
            )
        else:
            files[key] = (line, row.role)
        if fraction_problem := tumor_fraction_problem(row):
            problems.append(f"{where}: {fraction_problem}")
    duplicated = sorted(set(sheet["sample"][sheet["sample"].duplicated()]))
    if duplicated:
        problems.append(
            f"{path}: sample name(s) {', '.join(duplicated)} appear more than once"
        )
    if config["pon"] is None and (sheet["role"] == "normal").sum() < 3:
        problems.append(
            f"{path}: at least 3 normal samples are needed to build a panel of normals (or set pon:)"
        )
    return problems


def read_sheet(path):
    """The sheet's rows as strings and their line numbers; '#' starts a comment line only (a path may hold one)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        text = handle.read().splitlines()
    # csv removes quotes around fields, as spreadsheets export them
    lines = [
        (number, fields)
        for number, fields in zip(
            range(1, len(text) + 1), csv.reader(text, delimiter="\t")
        )
        if "".join(fields).strip() and not text[number - 1].startswith("#")
    ]
    if not lines:
        raise WorkflowError(f"{path}: the sample sheet is empty")
    (_, header), rows = lines[0], lines[1:]
    wrong = [
        f"{path}: line {number}: {len(fields)} fields, the header has {len(header)}"
        for number, fields in rows
        if len(fields) != len(header)
    ]
    if wrong:
        raise WorkflowError("\n".join(wrong))
    sheet = pd.DataFrame([fields for _, fields in rows], columns=header, dtype=str)
    return sheet, [number for number, _ in rows]


def load_samples(path):
    """The sample sheet, refused with every problem found, each naming the sheet and the line."""
    if not os.path.isfile(path):
        raise WorkflowError(f"{path}: sample sheet not found")
    sheet, lines = read_sheet(path)
    missing = [c for c in COLUMNS if c not in sheet.columns]
    if missing:
        raise WorkflowError(
            f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(COLUMNS)})"
        )
    unknown = [c for c in sheet.columns if c not in COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise WorkflowError(
            f"{path}: unknown column(s) {', '.join(unknown)} "
            f"(columns: {', '.join(COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)})"
        )
    problems = config_problems() + sheet_problems(path, sheet, lines)
    if problems:
        raise WorkflowError("\n".join(problems))
    validate(sheet, schema="../schemas/samples.schema.yaml")
    return sheet.set_index("sample", drop=False)


SAMPLES = load_samples(config["samples"])
NORMALS = list(SAMPLES.index[SAMPLES["role"] == "normal"])
PATIENTS = sorted(set(SAMPLES["patient"][SAMPLES["role"] == "plasma"]))
PON = config["pon"] or f"{OUTDIR}/pon/pon.npz"


def bam_of(wildcards):
    return SAMPLES.loc[wildcards.sample, "bam"]


def patient_options(wildcards):
    """--patient/--date for plasma samples, recorded in the call for monitoring, and the sample's own
    tumour fraction where the sheet gives one."""
    row = SAMPLES.loc[wildcards.sample]
    if row.role == "normal":
        return ""
    given = row.get("tumor_fraction", "NA")
    fraction = "" if given in ("", "NA") else f" --tumor-fraction {given}"
    return f"--patient {row.patient} --date {row.date}{fraction}"


def calls_of_patient(wildcards):
    members = SAMPLES.index[
        (SAMPLES["patient"] == wildcards.patient) & (SAMPLES["role"] == "plasma")
    ]
    return [f"{OUTDIR}/calls/{sample}.call.json" for sample in members]


def simulated_bams():
    return [bam for bam in SAMPLES["bam"] if in_demo_directory(bam)]


CALL_OUTPUTS = ["call.json", "report.html", "ratios.tsv", "seg"] + (
    ["genome.png", "chr17.png"] if PLOTS else []
)
MONITOR_OUTPUTS = ["monitor.json", "monitor.tsv", "monitor.html"]
