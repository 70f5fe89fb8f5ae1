"""The whole pipeline through ``her2cnv.cli.main`` on seeded simulations with known truth (cohort: conftest.py)."""
import json

import numpy as np

import pytest

from conftest import call_simulated, run
from her2cnv import io, normalize
from her2cnv.cli import main


def test_clear_focal_amplification(cohort):
    call = call_simulated(cohort, "AMP", "--seed", 11, "--tumor-fraction", 0.3, "--preset", "crc_typical",
                          "--preset", "erbb2_focal", "--erbb2-copy-number", 20)
    erbb2, fraction = call["erbb2"], call["tumor_fraction"]
    assert erbb2["status"] == "high_level_amplification", erbb2["reason"]
    expected_plasma = 2 + 0.3 * (20 - 2)
    low, high = erbb2["plasma_copy_number_ci95"]
    assert low <= expected_plasma <= high or abs(erbb2["plasma_copy_number"] - expected_plasma) < 0.1 * expected_plasma
    assert fraction["detected"] and abs(fraction["estimate"] - 0.3) <= 0.05
    assert erbb2["focal"] is True and "ERBB2" in erbb2["amplicon"]["genes"]
    assert abs(erbb2["tumor_copy_number"] - 20) <= 5
    assert 6 <= erbb2["tumor_copy_number_floor"] < erbb2["tumor_copy_number_ci95"][0]  # 3 SE reach further than 1.96
    assert f"at least {erbb2['tumor_copy_number_floor']:.1f} with the confidence a gain needs" in (
        cohort / "calls" / "AMP.report.html").read_text()
    for suffix in ("counts.tsv", "ratios.tsv", "seg", "genome.png", "chr17.png"):
        assert (cohort / "calls" / f"AMP.{suffix}").stat().st_size > 0


def test_no_amplification(cohort, tmp_path):
    """No ERBB2 gain at TF 30%. On its own fit the call is indeterminate: a tumour doubled after its arm events
    (TF 17%) would hide an amplification of fewer than twice the diploid limit of detection. Given the true
    fraction, which rules that reading out, it is not_detected."""
    call = call_simulated(cohort, "NOAMP", "--seed", 12, "--tumor-fraction", 0.3, "--preset", "crc_typical")
    assert call["erbb2"]["status"] == "indeterminate" and "under another ploidy reading" in call["erbb2"]["reason"]
    assert abs(call["erbb2"]["plasma_copy_number"] - 2) < 0.15
    assert call["erbb2"]["tumor_copy_number"] == pytest.approx(2, abs=1.0)
    run("call", cohort / "calls" / "NOAMP.counts.tsv", "--pon", cohort / "pon.npz", "-o", tmp_path,
        "--tumor-fraction", 0.3, "--no-plots")
    given = json.loads((tmp_path / "NOAMP.call.json").read_text())["erbb2"]
    assert given["status"] == "not_detected", given["reason"]
    assert all(r["baseline_copy_number"] < 4 for r in given["ploidy_readings"])


def test_arm_gain_is_never_high_level(cohort):
    call = call_simulated(cohort, "ARM", "--seed", 13, "--tumor-fraction", 0.3, "--preset", "crc_typical",
                          "--preset", "arm_gain_17q")
    assert call["erbb2"]["status"] != "high_level_amplification", call["erbb2"]["reason"]
    assert call["erbb2"]["focal"] is not True
    assert call["erbb2"]["arm_log2_ratios"]["17q"] > 0.1  # reported even when ERBB2's segment is the whole arm


def test_public_interface_fields_are_present(cohort):
    """The field sets of SAMPLE.call.json, exactly as the README's table lists them."""
    call = json.loads(next((cohort / "calls").glob("*.call.json")).read_text())
    assert call["format"] == "her2cnv.call/1"
    assert set(call) == {"format", "sample", "patient", "date", "erbb2", "tumor_fraction", "qc", "provenance"}
    assert set(call["erbb2"]) == {
        "status", "reason", "plasma_copy_number", "plasma_copy_number_ci95", "tumor_copy_number",
        "tumor_copy_number_ci95", "tumor_copy_number_floor", "log2_ratio", "log2_ratio_se", "measured_on",
        "core_log2_ratio", "gain_detected", "detectable_plasma_copy_number", "z_score", "null_z_score", "focal",
        "amplicon", "arm_log2_ratios", "limit_of_detection_copy_number", "called_on", "size_weighted",
        "ploidy_readings"}
    assert set(call["tumor_fraction"]) == {"estimate", "ci95", "method", "detected", "detection_limit", "ploidy",
                                           "baseline_copy_number", "fit_improvement", "segments_used",
                                           "model_error_log2", "size_weighted"}
    readings = json.loads((cohort / "calls" / "AMP.call.json").read_text())["erbb2"]["ploidy_readings"]
    assert readings and all(set(reading) == {
        "baseline_copy_number", "copies_per_step", "ploidy", "tumor_fraction", "tumor_fraction_ci95",
        "tumor_copy_number", "tumor_copy_number_ci95", "tumor_copy_number_floor", "limit_of_detection_copy_number",
        "core_upper_copy_number"} for reading in readings)
    assert {"pass", "reasons", "noise_mapd"} <= set(call["qc"])
    assert {"version", "parameters", "inputs"} <= set(call["provenance"])


def test_call_is_byte_identical_when_rerun(cohort, tmp_path):
    counts = cohort / "calls" / "AMP.counts.tsv"
    for directory in ("first", "second"):
        run("call", counts, "--pon", cohort / "pon.npz", "-o", tmp_path / directory)
    for produced in (tmp_path / "first").iterdir():
        assert produced.read_bytes() == (tmp_path / "second" / produced.name).read_bytes(), produced.name


def test_counts_from_other_bins_are_refused(cohort, tmp_path, capsys):
    run("bins", "--fasta", cohort / "reference.fa", "-o", tmp_path / "other_bins.tsv", "--bin-size", 200000)
    run("count", cohort / "N0.bam", "--bins", tmp_path / "other_bins.tsv", "-o", tmp_path / "other.counts.tsv")
    assert main(["call", str(tmp_path / "other.counts.tsv"), "--pon", str(cohort / "pon.npz"),
                 "-o", str(tmp_path / "out"), "--quiet"]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("her2cnv: error:") and "other bins than the panel" in message
    assert len(message.splitlines()) == 1
    assert not list((tmp_path / "out").glob("*.call.json"))


def test_count_checked_against_its_panel_counts_the_same(cohort, tmp_path):
    """'count --pon' only checks: the table is the plain count's, byte for byte."""
    run("count", cohort / "N0.bam", "--bins", cohort / "bins.tsv", "--pon", cohort / "pon.npz",
        "-o", tmp_path / "N0.counts.tsv")
    assert (tmp_path / "N0.counts.tsv").read_bytes() == (cohort / "N0.counts.tsv").read_bytes()


def test_truncated_bam_fails_cleanly(cohort, tmp_path, capsys):
    data = (cohort / "N0.bam").read_bytes()
    (tmp_path / "cut.bam").write_bytes(data[: len(data) // 3])
    assert main(["run", str(tmp_path / "cut.bam"), "--bins", str(cohort / "bins.tsv"), "--pon",
                 str(cohort / "pon.npz"), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    message = capsys.readouterr().err.strip()
    assert "cut.bam" in message and "truncated" in message and "Traceback" not in message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_segments_recover_arm_gain_and_amplicon(cohort):
    """17q gain (CN 3) plus a 300 kb amplicon (CN 20) at TF 30%: boundaries within two bins of the truth,
    levels matching the mixture (2(1 - TF) + TF CN) / 2 within their 95% intervals (relative to diploid)."""
    from her2cnv import call

    bam = cohort / "SEG.bam"
    run("simulate", "sample", "--reference", cohort / "reference.fa", "-o", bam, "--sample", "SEG", "--seed", 14,
        "--depth", 1.0, "--tumor-fraction", 0.3, "--preset", "crc_typical", "--preset", "arm_gain_17q",
        "--preset", "erbb2_focal", "--erbb2-copy-number", 20)
    run("count", bam, "--bins", cohort / "bins.tsv", "-o", cohort / "SEG.counts.tsv")
    counts = io.read_counts(cohort / "SEG.counts.tsv")
    panels, _ = io.read_panel(cohort / "pon.npz")
    assembly = io.load_assembly("GRCh38")
    arm = json.loads((cohort / "reference.fa.her2cnv.json").read_text())["arm_boundaries"]["chr17"]
    analysis = call.analyse(counts, panels, assembly, io.read_thresholds())
    fit, profile, segments = analysis.fit, analysis.profile, analysis.segments
    on17 = [i for i in range(len(segments)) if segments.chrom[i] == "chr17"]
    starts = [int(counts.bins.start[segments.first_bin[i]]) for i in on17]
    ends = [int(counts.bins.end[segments.end_bin[i] - 1]) for i in on17]
    amplicon = min(range(len(on17)), key=lambda k: abs(starts[k] - 39_600_000))
    assert abs(starts[amplicon] - 39_600_000) <= 2 * 10_000 and abs(ends[amplicon] - 39_900_000) <= 2 * 10_000
    # the 17q gain starts at the arm boundary, inside the simulated centromere's N gap (masked bins): segments
    # can only change at usable bins, so the boundary is measured in usable bins from the first after the gap
    usable_starts = counts.bins.start[(counts.bins.chrom == "chr17") & np.isfinite(profile.log2_ratio)]
    first_after = int(np.searchsorted(usable_starts, arm))
    assert any(abs(int(np.searchsorted(usable_starts, s)) - first_after) <= 2 for s in starts)
    truth = {"amplicon": np.log2((2 * 0.7 + 0.3 * 20) / 2), "17q": np.log2((2 * 0.7 + 0.3 * 3) / 2)}
    i = on17[amplicon]
    low, high = segments.ci_low[i] - fit.baseline_log2, segments.ci_high[i] - fit.baseline_log2
    assert low - 0.02 <= truth["amplicon"] <= high + 0.02  # 0.02: the TF-fit baseline's own error
    q_arm = [on17[k] for k in range(len(on17)) if starts[k] >= arm and k != amplicon and ends[k] - starts[k] > 5e6]
    assert q_arm and all(segments.ci_low[i] - fit.baseline_log2 - 0.02 <= truth["17q"]
                         <= segments.ci_high[i] - fit.baseline_log2 + 0.02 for i in q_arm)


def test_erbb2_inside_an_arm_scale_segment_gets_an_interval_that_covers_an_unresolved_amplicon(cohort):
    """TF 5%, a 300 kb amplicon at CN 6: too weak to segment, so ERBB2 sits in an arm-scale segment whose own
    95% interval (from log2_ratio_se) misses the truth; the reported interval also spans the core's bins."""
    call = call_simulated(cohort, "HIDDEN", "--seed", 15, "--tumor-fraction", 0.05, "--preset", "crc_typical",
                          "--preset", "erbb2_focal", "--erbb2-copy-number", 6)
    erbb2 = call["erbb2"]
    expected_plasma = 2 + 0.05 * (6 - 2)
    segment_only = [2 * 2 ** (erbb2["log2_ratio"] + z * erbb2["log2_ratio_se"]) for z in (-1.96, 1.96)]
    assert erbb2["measured_on"] == "segment" and erbb2["amplicon"] is None
    assert not segment_only[0] <= expected_plasma <= segment_only[1]
    low, high = erbb2["plasma_copy_number_ci95"]
    assert low <= expected_plasma <= high
    assert f"95% CI {low:.2f}-{high:.2f} with the amplicon core's bins" in erbb2["reason"]


@pytest.mark.parametrize("seed", [31, 32])
def test_an_amplicon_that_ends_inside_the_core_before_erbb2_is_not_read_as_erbb2(cohort, seed):
    """CN 100 over CDK12 to the first half of PGAP3, ending 900 bp before ERBB2 (audit 2026-11-22): ERBB2 is at
    CN 2. The core's bins, partly inside the amplicon, once stood in for ERBB2 and made it high-level (tumour CN
    13-15); ERBB2's own bins disagree with the core's other bins, so ERBB2 is measured on them."""
    call = call_simulated(cohort, f"NEXT{seed}", "--seed", seed, "--tumor-fraction", 0.1, "--preset", "crc_typical",
                          "--event", "chr17:39400001-39687000:100")
    erbb2 = call["erbb2"]
    assert erbb2["status"] in ("not_detected", "indeterminate"), erbb2["reason"]
    assert erbb2["measured_on"] == "gene"
    low, high = erbb2["plasma_copy_number_ci95"]
    assert low <= 2.0 <= high


def test_external_tumour_fraction_resolves_a_flat_genome(cohort, tmp_path):
    """A focal CN-20 amplicon at TF 10% in a tumour with no arm events: the tumour fraction cannot be measured,
    so the call is indeterminate; given --tumor-fraction (as from variant allele fractions) it is high-level,
    with the tumour copy number recovered and the fraction recorded as external."""
    unknown = call_simulated(cohort, "FLAT", "--seed", 16, "--tumor-fraction", 0.1, "--preset", "erbb2_focal",
                             "--erbb2-copy-number", 20)
    assert not unknown["tumor_fraction"]["detected"]
    assert unknown["erbb2"]["status"] == "indeterminate" and unknown["erbb2"]["tumor_copy_number"] is None
    assert "--tumor-fraction" in unknown["erbb2"]["reason"]
    run("call", cohort / "calls" / "FLAT.counts.tsv", "--pon", cohort / "pon.npz", "-o", tmp_path,
        "--tumor-fraction", 0.1)
    given = json.loads((tmp_path / "FLAT.call.json").read_text())
    assert given["tumor_fraction"]["estimate"] == 0.1 and "external" in given["tumor_fraction"]["method"]
    assert given["erbb2"]["status"] == "high_level_amplification", given["erbb2"]["reason"]
    low, high = given["erbb2"]["tumor_copy_number_ci95"]
    assert low <= 20 <= high and abs(given["erbb2"]["tumor_copy_number"] - 20) <= 4


def test_an_external_tumour_fraction_the_copy_number_fit_contradicts_is_not_trusted(cohort, tmp_path):
    """A CN-6 tumour at TF 20% given --tumor-fraction 0.05 (audit 2026-11-22: read as high-level, 21.4): the
    sample's own fit finds 20%, so the tumour copy number is not established. On its own fit the call is
    indeterminate: a tumour doubled after its arm events (TF 0.2 / 1.8 = 11%) would hold twice the excess copies,
    10 or more. A value the fit agrees with keeps the readings it agrees with: 0.11 only the doubled one, read on
    the fit's baseline as 4 copies (tumour CN about 12); 0.21 the diploid one but also the near-triploid and
    single-step tetraploid ones (22% and 25%, within the fit's accuracy), under which 6 becomes 7-8."""
    measured = call_simulated(cohort, "WRONGTF", "--seed", 17, "--tumor-fraction", 0.2, "--preset", "crc_typical",
                              "--preset", "erbb2_focal", "--erbb2-copy-number", 6)
    assert measured["tumor_fraction"]["detected"] and measured["erbb2"]["status"] == "indeterminate"
    assert "if the tumour is diploid, but under another ploidy reading" in measured["erbb2"]["reason"]
    calls = {}
    for given in (0.05, 0.21, 0.11):
        run("call", cohort / "calls" / "WRONGTF.counts.tsv", "--pon", cohort / "pon.npz", "-o", tmp_path / str(given),
            "--tumor-fraction", given, "--no-plots")
        calls[given] = json.loads((tmp_path / str(given) / "WRONGTF.call.json").read_text())
    assert calls[0.05]["erbb2"]["status"] == "indeterminate"
    assert "the tumour fraction given, 5.0%, disagrees with this sample's copy-number fit" in \
        calls[0.05]["erbb2"]["reason"]
    doubled = calls[0.11]
    assert "disagrees" not in doubled["erbb2"]["reason"] and doubled["erbb2"]["ploidy_readings"] == []
    assert doubled["tumor_fraction"]["baseline_copy_number"] == 4
    assert 9 < doubled["erbb2"]["tumor_copy_number"] < 15, doubled["erbb2"]["reason"]
    diploid = calls[0.21]
    assert diploid["tumor_fraction"]["baseline_copy_number"] == 2
    assert [r["baseline_copy_number"] for r in diploid["erbb2"]["ploidy_readings"]] == [3, 4]
    assert 4 < diploid["erbb2"]["tumor_copy_number"] < 8 and diploid["erbb2"]["status"] == "indeterminate"


def test_size_weighted_fragments_reveal_a_tumour_fraction_below_detection(cohort, modelled_short_share):
    """TF 3%, CN 40: below the all-fragment detection limit (~3.2% here), so the call takes the second look with
    each 90-150 bp fragment counted 3 times. There tumour DNA is detected; its share of the weighted fragments
    matches the simulator's fragment-length model; and the tumour copy number, from the ERBB2 level on the same
    fragments, covers the truth and is high-level. The plasma copy number stays the all-fragment one."""
    call = call_simulated(cohort, "LOWTF", "--seed", 22, "--tumor-fraction", 0.03, "--preset", "crc_typical",
                          "--preset", "erbb2_focal", "--erbb2-copy-number", 40)
    erbb2, fraction = call["erbb2"], call["tumor_fraction"]
    assert not fraction["detected"] and fraction["size_weighted"]["detected"]
    assert erbb2["called_on"] == "size_weighted" and erbb2["status"] == "high_level_amplification", erbb2["reason"]
    assert erbb2["reason"].startswith("Tumour fraction below detection with all fragments")
    # the tumour share among weighted fragments: normal and tumour fragments weigh 1 + 2 x (their 90-150 bp share)
    weight = {origin: 1 + (normalize.SHORT_FRAGMENT_WEIGHT - 1) * modelled_short_share(origin)
              for origin in ("normal", "tumor")}
    expected_share = 0.03 * weight["tumor"] / (0.97 * weight["normal"] + 0.03 * weight["tumor"])
    low, high = fraction["size_weighted"]["ci95"]
    assert low <= expected_share <= high and 0.04 < expected_share < 0.05
    assert fraction["size_weighted"]["estimate"] <= fraction["size_weighted"]["ceiling"]
    assert not fraction["size_weighted"]["above_ceiling"]
    low, high = erbb2["tumor_copy_number_ci95"]
    assert low <= 40 <= high and low >= 8
    assert erbb2["size_weighted"]["plasma_copy_number"] > erbb2["plasma_copy_number"] > 2
    assert abs(erbb2["plasma_copy_number"] - (2 + 0.03 * 38)) < 0.5
    assert "tumour share of size-weighted fragments" in (cohort / "calls" / "LOWTF.report.html").read_text()


def test_a_size_weighted_share_above_its_ceiling_is_not_used(cohort, monkeypatch):
    """Below the all-fragment detection limit L, weighted counts can hold at most the share of a tumour whose
    fragments are all short at TF L (the ceiling). A second-look estimate above it is noise: the all-fragment
    call stands, and its reason says why the second look was not used."""
    from dataclasses import replace

    from her2cnv import call

    call_simulated(cohort, "CEILING", "--seed", 22, "--tumor-fraction", 0.03, "--preset", "crc_typical",
                   "--preset", "erbb2_focal", "--erbb2-copy-number", 40)
    counts = io.read_counts(cohort / "calls" / "CEILING.counts.tsv")
    panels, _ = io.read_panel(cohort / "pon.npz")
    honest = call.analyse(counts, panels, io.load_assembly("GRCh38"), io.read_thresholds())
    ceiling = honest.size_weighted_fit.ceiling
    short_share = counts.short_count.sum() / counts.count.sum()
    limit = honest.fit.limit
    assert ceiling == pytest.approx(3 * limit / ((1 + 2 * short_share) * (1 - limit) + 3 * limit))
    assert honest.size_weighted_fit.estimate <= ceiling and honest.call.called_on == "size_weighted"
    look = call._look

    def inflated(counts, bins, panel, *rest):
        profile, segments, fit = look(counts, bins, panel, *rest)
        if panel.channel == "size_weighted":
            fit = replace(fit, estimate=ceiling + 0.01, ci95=(ceiling - 0.01, ceiling + 0.03))
        return profile, segments, fit

    monkeypatch.setattr(call, "_look", inflated)
    noisy = call.analyse(counts, panels, io.load_assembly("GRCh38"), io.read_thresholds())
    assert noisy.call.called_on == "all" and noisy.call.tumor_copy_number is None
    assert noisy.call.status == "indeterminate" and "so it is not used" in noisy.call.reason
    assert noisy.size_weighted_fit.above_ceiling
