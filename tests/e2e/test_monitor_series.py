"""Monitoring a simulated patient: response then progression; replicate draws of one state stay stable."""
import itertools
import json

from conftest import call_simulated, run

from her2cnv.cli import main

TUMOUR = ("--preset", "crc_typical", "--preset", "erbb2_focal", "--erbb2-copy-number", "20")


def test_series_shows_response_then_progression(cohort):
    series = [("BASE", "2026-01-05", 0.2, 21), ("D21", "2026-01-26", 0.05, 22), ("PROG", "2026-04-20", 0.3, 23)]
    for name, date, fraction, seed in series:
        call_simulated(cohort, name, "--seed", seed, "--tumor-fraction", fraction, *TUMOUR,
                       call_options=("--patient", "P9", "--date", date), outdir="series")
    calls = [cohort / "series" / f"{name}.call.json" for name, *_ in reversed(series)]
    run("monitor", *calls, "-o", cohort / "monitor")
    document = json.loads((cohort / "monitor" / "P9.monitor.json").read_text())
    assert document["patient"] == "P9" and [t["sample"] for t in document["timepoints"]] == ["BASE", "D21", "PROG"]
    responses = [t["change_from_baseline"]["response"] for t in document["timepoints"][1:]]
    assert responses == ["molecular_response", "progression"]
    for field in ("sample", "date", "status", "plasma_copy_number", "tumor_fraction", "tumor_copy_number"):
        assert field in document["timepoints"][0]
    page = (cohort / "monitor" / "P9.monitor.html").read_text()
    assert "Research use only" in page and "data:image/png;base64," in page and "<script" not in page
    table = (cohort / "monitor" / "P9.monitor.tsv").read_text().splitlines()
    assert [line.split("=")[0] for line in table[:3]] == ["#format", "#patient", "#provenance"]
    assert len(table) == 3 + 1 + 3  # the header, the columns, a row per draw
    # a sample sheet may fill in what calls lack, never contradict what they record (audit 12: it relabelled P9)
    sheet = cohort / "sheet.tsv"
    sheet.write_text("sample\tpatient\tdate\trole\tbam\n" + "".join(
        f"{name}\tP1\t{date}\tplasma\tNA\n" for name, date, *_ in series))
    assert main(["monitor", *map(str, calls), "-o", str(cohort / "relabelled"), "--sample-sheet", str(sheet),
                 "--quiet"]) == 2
    assert not (cohort / "relabelled").exists()
    assert main(["monitor", *map(str, calls), "-o", str(cohort / "redated"), "--dates", "2026-01-05", "2026-02-01",
                 "2026-03-01", "--quiet"]) == 2


def test_replicate_draws_of_one_state_are_stable(cohort):
    names = []
    for seed in range(31, 35):
        names.append(f"REP{seed}")
        call_simulated(cohort, names[-1], "--seed", seed, "--tumor-fraction", 0.2, *TUMOUR, outdir="replicates")
    pairs = list(itertools.combinations(names, 2))
    for i, (first, second) in enumerate(pairs):
        run("monitor", cohort / "replicates" / f"{first}.call.json", cohort / "replicates" / f"{second}.call.json",
            "--patient", "R", "--dates", "2026-01-01", "2026-02-01", "-o", cohort / f"pair{i}")
    responses = [json.loads((cohort / f"pair{i}" / "R.monitor.json").read_text())["timepoints"][1]
                 ["change_from_baseline"]["response"] for i in range(len(pairs))]
    assert responses.count("stable") == len(pairs), responses
