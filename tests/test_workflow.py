"""The Snakemake workflow: lint, formatting, sample-sheet refusals, and a real run on a job-submission executor.

The real run uses the ``.test/`` cohort and Snakemake's cluster-generic executor with
``.test/cluster/submit.sh`` (jobs run as background processes), so the job-submission
path is exercised, not just local execution.
"""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHEET_HEADER = "sample\tpatient\tdate\trole\tbam\n"


def snakemake(*arguments, cwd=ROOT):
    return subprocess.run(["snakemake", *map(str, arguments)], cwd=cwd, capture_output=True, text=True, timeout=1200)


def test_lint_passes():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_is_clean():
    result = subprocess.run(["snakefmt", "--check", "snakefile", "rules"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def real_bam(tmp_path):
    bam = tmp_path / "real.bam"
    bam.write_bytes(b"placeholder")  # only its existence is checked before any job runs
    return bam


NO_ROLE_HEADER = "sample\tpatient\tdate\tbam\n"


@pytest.mark.parametrize("header, rows, message", [
    (NO_ROLE_HEADER, "S1\tNA\tNA\t{bam}\n", "missing column(s) role"),
    (SHEET_HEADER, "S1\tNA\tNA\tnormal\t{bam}\nS1\tNA\tNA\tnormal\t{bam}\nS2\tNA\tNA\tnormal\t{bam}\n",
     "S1 appear more than once"),
    (SHEET_HEADER, "S1\tNA\tNA\ttumour\t{bam}\n", "unknown role 'tumour'"),
    (SHEET_HEADER, "S1\tNA\tNA\tnormal\t{missing}\n", "does not exist"),
    (SHEET_HEADER, "../S1\tNA\tNA\tnormal\t{bam}\n", "not safe as a file name"),
    (SHEET_HEADER, "S1\tP1\tNA\tplasma\t{bam}\n", "needs a patient and a valid YYYY-MM-DD date"),
    (SHEET_HEADER, "S1\tP1\t2026-13-45\tplasma\t{bam}\n", "needs a patient and a valid YYYY-MM-DD date"),
    (SHEET_HEADER, "S1\tP1\t2026-01-05\tplasma\t{bam}\nS2\tP1\t2026-01-05\tplasma\t{bam}\n",
     "patient P1 already has a sample on 2026-01-05 (S1)"),
    # every problem at once, one line each, not one run at a time
    (SHEET_HEADER, "S1\tNA\tNA\ttumour\t{bam}\n../x\tNA\tNA\tnormal\t{bam2}\n",
     "line 2: unknown role 'tumour' (normal or plasma)\n{sheet}: line 3: sample name '../x' is not safe"),
    # a plasma sample also listed as a normal would enter the panel of normals (audit 12)
    (SHEET_HEADER, "S1\tP1\t2026-01-05\tplasma\t{bam}\nN1\tNA\tNA\tnormal\t{bam_link}\n",
     "line 3: BAM/CRAM {bam_link} is the file of line 2 too; a plasma sample listed as a normal would enter"),
    (SHEET_HEADER, "S1\tP1\t2026-01-05\tplasma\t{bam}\nS2\tP1\t2026-01-26\tplasma\t{bam_link}\n",
     "line 3: BAM/CRAM {bam_link} is the file of line 2 too; one library would be counted as two samples"),
    (SHEET_HEADER, "S1\tNA\tNA\tnormal\t{bam}\tx\n", "line 2: 6 fields, the header has 5"),
    (SHEET_HEADER.replace("\n", "\tpurity\n"), "S1\tNA\tNA\tnormal\t{bam}\t0.2\n", "unknown column(s) purity"),
    (SHEET_HEADER.replace("\n", "\ttumor_fraction\n"), "S1\tP1\t2026-01-05\tplasma\t{bam}\t20%\n",
     "line 2: tumor_fraction '20%' is not a fraction in [0.001, 1] or NA"),
    (SHEET_HEADER.replace("\n", "\ttumor_fraction\n"), "N1\tNA\tNA\tnormal\t{bam}\t0.1\n",
     "line 2: a tumour fraction (0.1) is given for a normal sample"),
], ids=["missing-column", "duplicate", "unknown-role", "missing-file", "unsafe-name", "plasma-without-date",
        "impossible-date", "two-samples-one-date", "every-problem", "plasma-also-normal", "one-file-two-plasmas",
        "extra-field", "unknown-column", "bad-tumor-fraction", "normal-with-tumor-fraction"])
def test_bad_sample_sheets_fail_before_any_job(tmp_path, real_bam, header, rows, message):
    bam2, bam_link = tmp_path / "second.bam", tmp_path / "link.bam"
    bam2.write_bytes(b"placeholder")
    bam_link.symlink_to(real_bam)
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(header + rows.format(bam=real_bam, bam2=bam2, bam_link=bam_link, missing=tmp_path / "absent.bam"))
    result, outdir = _run_with_sheet(tmp_path, sheet, real_bam)
    assert result.returncode != 0
    assert message.format(sheet=sheet, bam_link=bam_link) in result.stderr, result.stderr
    assert not outdir.exists()


def _run_with_sheet(tmp_path, sheet, reference, extra="", *flags):
    outdir = tmp_path / "results"
    config = tmp_path / "config.yaml"
    config.write_text(f"samples: {sheet}\noutdir: {outdir}\nreference: {reference}\n{extra}demo:\n  simulate: false\n"
                      "  directory: none\n  normals: 3\n  depth: 1.0\n  scale: 0.1\n  seed: 1\n")
    return snakemake("-c", 1, *flags, "--configfile", config), outdir


@pytest.mark.parametrize("extra, message", [
    ('call_options: "--tumour-fraction 0.1"',
     "config: call_options: unrecognized arguments: --tumour-fraction 0.1"),
    ('call_options: "--tumor-frac=0.1"', "config: call_options: a tumour fraction would apply to every sample"),
    ('count_options: "--min-mapq x"', "config: count_options: her2cnv count: argument --min-mapq"),
    ("reference: {tmp}/absent.fa", "config: reference FASTA {tmp}/absent.fa does not exist"),
], ids=["misspelt-option", "tumor-fraction-for-all", "bad-option-value", "missing-reference"])
def test_bad_config_fails_before_any_job(tmp_path, real_bam, extra, message):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(SHEET_HEADER + "".join(f"N{i}\tNA\tNA\tnormal\t{tmp_path}/N{i}.bam\n" for i in range(3)))
    for i in range(3):
        (tmp_path / f"N{i}.bam").write_bytes(b"placeholder")
    # a later key wins over the same key earlier in the file (YAML: last one)
    result, outdir = _run_with_sheet(tmp_path, sheet, real_bam, extra.format(tmp=tmp_path) + "\n")
    assert result.returncode != 0
    assert message.format(tmp=tmp_path) in result.stderr, result.stderr
    assert not outdir.exists()


def test_a_sheet_tumor_fraction_reaches_only_its_sample(tmp_path, real_bam):
    sheet = tmp_path / "samples.tsv"
    rows = "".join(f"N{i}\tNA\tNA\tnormal\t{tmp_path}/N{i}.bam\tNA\n" for i in range(3))
    rows += f"S1\tP1\t2026-01-05\tplasma\t{tmp_path}/S1.bam\t0.12\nS2\tP1\t2026-01-26\tplasma\t{tmp_path}/S2.bam\tNA\n"
    for name in ("N0", "N1", "N2", "S1", "S2"):
        (tmp_path / f"{name}.bam").write_bytes(b"placeholder")
    sheet.write_text(SHEET_HEADER.replace("\n", "\ttumor_fraction\n") + rows)
    result, _ = _run_with_sheet(tmp_path, sheet, real_bam, "", "-n", "-p")
    assert result.returncode == 0, result.stderr
    calls = [line for line in (result.stdout + result.stderr).splitlines() if "her2cnv call " in line]
    assert len(calls) == 5
    assert [line for line in calls if "--tumor-fraction" in line] == \
        [line for line in calls if "S1.counts.tsv" in line and "--tumor-fraction 0.12" in line]


def test_a_prebuilt_panel_is_checked_by_each_count(tmp_path, real_bam):
    """A prebuilt panel made with other bins or count filters fails at the count, not after it at the call."""
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(SHEET_HEADER + f"S1\tP1\t2026-01-05\tplasma\t{tmp_path}/S1.bam\n")
    (tmp_path / "S1.bam").write_bytes(b"placeholder")
    (tmp_path / "panel.npz").write_bytes(b"placeholder")
    result, _ = _run_with_sheet(tmp_path, sheet, real_bam, f"pon: {tmp_path}/panel.npz\n", "-n", "-p")
    assert result.returncode == 0, result.stderr
    counts = [line for line in (result.stdout + result.stderr).splitlines() if "her2cnv count " in line]
    assert len(counts) == 1 and f"--pon {tmp_path}/panel.npz" in counts[0]


def test_a_misspelt_config_key_is_refused(tmp_path):
    """A typo must not silently fall back to the default: 'outdri' would have written to results/."""
    config = tmp_path / "config.yaml"
    config.write_text((ROOT / "config" / "config.yaml").read_text().replace("outdir:", "outdri:"))
    result = snakemake("-n", "--configfile", config)
    assert result.returncode != 0
    assert "Additional properties are not allowed ('outdri' was unexpected)" in result.stdout + result.stderr


def test_demo_cohort_runs_through_a_job_submission_executor():
    results = ROOT / ".test" / "results"
    shutil.rmtree(results, ignore_errors=True)
    # a status check every second, not Snakemake's default 10 s: each round of jobs would otherwise wait
    # up to 10 s to be seen finished: 173 s of this test became 80 s
    arguments = ("--configfile", ".test/config/config.yaml", "--executor", "cluster-generic",
                 "--cluster-generic-submit-cmd", ".test/cluster/submit.sh", "--jobs", 2, "--latency-wait", 10,
                 "--seconds-between-status-checks", 1)
    result = snakemake(*arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("\t") for line in (results / "cohort_summary.tsv").read_text().splitlines()
            if not line.startswith("#")]
    header, body = rows[0], {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert header[:4] == ["sample", "patient", "date", "status"]
    assert body["P1_baseline"]["status"] == "high_level_amplification"
    # healthy donors carry no tumour DNA: TF below detection, so an amplification cannot be excluded
    assert all(body[f"N0{i}"]["status"] == "indeterminate" for i in range(1, 7))
    monitor = (results / "monitor" / "P1.monitor.tsv").read_text()
    rows = [line.split("\t") for line in monitor.splitlines() if not line.startswith("#")][1:]  # after the columns
    responses = {row[0]: row[6] for row in rows}
    assert responses == {"P1_baseline": "baseline", "P1_day21": "molecular_response",
                         "P1_progression": "progression"}
    assert any((results / "logs" / "count").glob("N01.log"))
    rerun = snakemake(*arguments, "-n")
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
