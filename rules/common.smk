# Configuration and sample sheet: validated before any job runs, with one clear message per problem.
import datetime
import os
import re

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

SAFE_NAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
)  # used with fullmatch: "$" would let a final "\n" through
COLUMNS = ["sample", "patient", "date", "role", "bam"]
OUTDIR = config["outdir"]
LOGS = f"{OUTDIR}/logs"  # with the results: runs into other output directories keep their own logs
DEMO = config["demo"]
PLOTS = "--no-plots" not in config["call_options"]


def in_demo_directory(path):
    """True for BAMs that the demo's simulate_cohort rule writes."""
    return os.path.dirname(os.path.normpath(path)) == os.path.normpath(
        DEMO["directory"]
    )


def sheet_problems(path, sheet):
    """Every problem of the sheet's rows, one line each, naming the line."""
    problems, dates = [], {}
    for line, row in zip(range(2, len(sheet) + 2), sheet.itertuples()):
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


def load_samples(path):
    """The sample sheet, refused with every problem found, each naming the sheet and the line."""
    if not os.path.isfile(path):
        raise WorkflowError(f"{path}: sample sheet not found")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    missing = [c for c in COLUMNS if c not in sheet.columns]
    if missing:
        raise WorkflowError(
            f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(COLUMNS)})"
        )
    problems = sheet_problems(path, sheet)
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
    """--patient/--date for plasma samples, recorded in the call for monitoring."""
    row = SAMPLES.loc[wildcards.sample]
    return "" if row.role == "normal" else f"--patient {row.patient} --date {row.date}"


def calls_of_patient(wildcards):
    members = SAMPLES.index[
        (SAMPLES["patient"] == wildcards.patient) & (SAMPLES["role"] == "plasma")
    ]
    return [f"{OUTDIR}/calls/{sample}.call.json" for sample in members]


def simulated_bams():
    return (
        [bam for bam in SAMPLES["bam"] if in_demo_directory(bam)]
        if DEMO["simulate"]
        else []
    )
