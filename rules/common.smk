# Configuration and sample sheet: validated before any job runs, with one clear message per problem.
import os
import re

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
COLUMNS = ["sample", "patient", "date", "role", "bam"]
OUTDIR = config["outdir"]
DEMO = config["demo"]


def in_demo_directory(path):
    """True for BAMs that the demo's simulate_cohort rule writes."""
    return os.path.dirname(os.path.normpath(path)) == os.path.normpath(
        DEMO["directory"]
    )


def load_samples(path):
    """The sample sheet, refused with a message naming the sheet and the row when anything is wrong."""
    if not os.path.isfile(path):
        raise WorkflowError(f"{path}: sample sheet not found")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    missing = [c for c in COLUMNS if c not in sheet.columns]
    if missing:
        raise WorkflowError(
            f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(COLUMNS)})"
        )
    for line, row in zip(range(2, len(sheet) + 2), sheet.itertuples()):
        if not SAFE_NAME.match(row.sample):
            raise WorkflowError(
                f"{path}: line {line}: sample name {row.sample!r} is not safe as a file name "
                "(letters, digits, '.', '_', '-'; starting with a letter or digit)"
            )
        if row.role not in ("normal", "plasma"):
            raise WorkflowError(
                f"{path}: line {line}: unknown role {row.role!r} (normal or plasma)"
            )
        if row.patient != "NA" and not SAFE_NAME.match(row.patient):
            raise WorkflowError(
                f"{path}: line {line}: patient {row.patient!r} is not safe as a file name"
            )
        if row.role == "plasma" and (
            row.patient == "NA" or not re.match(r"^\d{4}-\d{2}-\d{2}$", row.date)
        ):
            raise WorkflowError(
                f"{path}: line {line}: plasma sample {row.sample} needs a patient and a YYYY-MM-DD date"
            )
        simulated = DEMO["simulate"] and in_demo_directory(row.bam)
        if not simulated and not os.path.isfile(row.bam):
            raise WorkflowError(
                f"{path}: line {line}: BAM/CRAM {row.bam} of sample {row.sample} does not exist"
            )
    duplicated = sorted(set(sheet["sample"][sheet["sample"].duplicated()]))
    if duplicated:
        raise WorkflowError(
            f"{path}: sample name(s) {', '.join(duplicated)} appear more than once"
        )
    validate(sheet, schema="../schemas/samples.schema.yaml")
    if config["pon"] is None and (sheet["role"] == "normal").sum() < 3:
        raise WorkflowError(
            f"{path}: at least 3 normal samples are needed to build a panel of normals (or set pon:)"
        )
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
