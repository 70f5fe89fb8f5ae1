"""The simulator: reference layout, copy-number mixture in the counts, fragment lengths, duplicates,
determinism, the cohort folder and the CLI's failure modes.

One small reference (chr17 at full length, other contigs at scale 0.05) is built
once per session; samples are low-pass WGS at modest depth or a capture panel
over the ERBB2 locus, where high depth is cheap.
"""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest

from her2cnv import io, simulate
from her2cnv.bins import detect_assembly
from her2cnv.cli import main
from her2cnv.counts import count_bam
from her2cnv.errors import InputError

SCALE = 0.05
AMPLICON = (39_600_000, 39_900_000)  # the erbb2_focal preset
LOCUS = (39_300_000, 40_600_000)  # the fine-bin locus: no N gaps, no low-mappability blocks
TUMOR_FRACTION, ERBB2_COPY_NUMBER = 0.2, 20.0


def run(*argv) -> int:
    return main([str(a) for a in argv])


def simulate_sample(reference: Path, output: Path, *options) -> Path:
    assert run("simulate", "sample", "--quiet", "--reference", reference, "-o", output, *options) == 0
    return output


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "ref.fa"
    assert run("simulate", "reference", "--quiet", "-o", path, "--scale", SCALE, "--seed", 1) == 0
    return path


@pytest.fixture(scope="session")
def genome_bins(reference):
    path = reference.with_name("bins.tsv")
    assert run("bins", "--quiet", "--fasta", reference, "-o", path) == 0
    return io.read_bins(path)[0]


@pytest.fixture(scope="session")
def panel_targets(reference) -> Path:
    """200 bp targets every 10 kb over the locus, and every 500 kb elsewhere on chr17."""
    path = reference.with_name("targets.bed")
    starts = list(range(LOCUS[0], LOCUS[1], 10_000)) + list(range(45_000_000, 80_000_000, 500_000))
    path.write_text("".join(f"chr17\t{s}\t{s + 200}\n" for s in starts))
    return path


@pytest.fixture(scope="session")
def wgs_tumor(reference) -> Path:
    return simulate_sample(reference, reference.with_name("tumor.bam"), "--seed", 11, "--sample", "T1",
                           "--tumor-fraction", TUMOR_FRACTION, "--depth", 0.5)


def panel_sample(reference, targets, name, seed, tumor_fraction, panel_depth) -> Path:
    return simulate_sample(reference, reference.with_name(f"{name}.bam"), "--seed", seed, "--sample", name,
                           "--tumor-fraction", tumor_fraction, "--panel", targets, "--panel-depth", panel_depth,
                           "--off-target-depth", 0)


def truth_of(bam: Path) -> dict:
    return json.loads(io.beside_output(bam, "truth.json").read_text())


def normal_expectation(reference: Path, truth: dict, targets=None) -> simulate.Windows:
    """Expected fragments per window of the same sample with no tumour (what a noise-free panel of normals
    would hold), from the truth's GC curve and the reference's efficiency."""
    model = io.read_simulated_reference(reference)
    design = simulate.SampleDesign(truth["sample"], truth["seed"], 0.0, (), truth["depth"], truth["panel_depth"],
                                   truth["duplicate_rate"], truth["read_length"])
    windows = simulate.make_windows(model, targets is None, targets, lambda c: io.read_fasta_bases(reference, c))
    expected, _ = simulate.expected_fragments(model, windows, design, truth["gc_bias"])
    return windows, expected


def check_mixture_ratio(observed_amplicon, observed_flank, expected_amplicon, expected_flank,
                        n_amplicon_windows, n_flank_windows):
    """Observed (amplicon / flank) over the no-tumour expectation must be (2(1-TF) + TF CN) / 2.

    Tolerance: 4 sd of the ratio of two gamma-Poisson sums; a sum of O fragments
    from n windows (mean m = O / n each) has relative variance (1 + OVERDISPERSION m) / O.
    """
    ratio = (observed_amplicon / expected_amplicon) / (observed_flank / expected_flank)
    target = float(simulate.plasma_ratio(TUMOR_FRACTION, ERBB2_COPY_NUMBER))

    def relative_variance(observed, n_windows):
        return (1 + simulate.OVERDISPERSION * observed / n_windows) / observed

    sd = target * np.sqrt(relative_variance(observed_amplicon, n_amplicon_windows)
                          + relative_variance(observed_flank, n_flank_windows))
    assert abs(ratio - target) < 4 * sd, (ratio, target, sd)
    return sd / target


# ---------------------------------------------------------------- reference

def test_reference_layout(reference):
    model = io.read_simulated_reference(reference)
    assembly = io.load_assembly("GRCh38")
    lengths = io.read_fasta_lengths(reference)
    assert list(lengths) == ["chr8", "chr13", "chr17", "chr18", "chr20"]  # assembly order
    assert lengths["chr17"] == 83_257_441
    assert lengths["chr8"] == round(assembly.contig_lengths["chr8"] * SCALE)
    assert model["arm_boundaries"]["chr8"] == round(assembly.arm_boundaries["chr8"] * SCALE / 1000) * 1000
    assert detect_assembly(lengths, io.load_assemblies(), str(reference)).name == "GRCh38"
    blocks = np.array([(s, e) for c, s, e in model["low_mappability"]])
    total = sum(lengths.values())
    assert 0.005 < (blocks[:, 1] - blocks[:, 0]).sum() / total < 0.03
    assert np.all((blocks[:, 1] - blocks[:, 0] >= 20_000) & (blocks[:, 1] - blocks[:, 0] <= 200_000))
    on_17 = [(s, e) for c, s, e in model["low_mappability"] + model["n_gaps"] if c == "chr17"]
    assert not any(s < LOCUS[1] and e > LOCUS[0] for s, e in on_17)
    with pysam.FastaFile(str(reference)) as fasta:
        assert set(fasta.fetch("chr20", 0, 100_000)) == {"N"}
        arm = model["arm_boundaries"]["chr20"]
        assert set(fasta.fetch("chr20", arm - 500, arm + 500)) == {"N"}
        locus = fasta.fetch("chr17", *LOCUS)
    assert set(locus) == set("ACGT")
    assert 0.3 < (locus.count("G") + locus.count("C")) / len(locus) < 0.65


def test_region_efficiency_is_a_property_of_the_reference():
    efficiency = {"seed": 4, "region_size": 20_000, "sd": simulate.EFFICIENCY_SD}
    first = simulate.region_efficiency(efficiency, "chr17", 83_257_441)
    assert np.array_equal(first, simulate.region_efficiency(efficiency, "chr17", 83_257_441))
    assert abs(np.log(first).std() - simulate.EFFICIENCY_SD) < 0.01
    assert abs(first.mean() - 1) < 0.01


# ---------------------------------------------------------------- model pieces

def test_erbb2_amplicon_keeps_erbb2_inside_at_any_size():
    assembly = io.load_assembly("GRCh38")
    erbb2 = assembly.gene_span("ERBB2")
    assert simulate.erbb2_amplicon(assembly) == ("chr17", *AMPLICON)
    assert simulate.erbb2_amplicon(assembly, 300_000) == ("chr17", *AMPLICON)
    for size in (60_000, 100_000, 2_000_000):
        _, start, end = simulate.erbb2_amplicon(assembly, size)
        assert end - start == size and start <= erbb2[0] and end >= erbb2[1]


def test_later_events_override_earlier_ones():
    events = [simulate.parse_event("chr17:1001-3000:4"), simulate.parse_event("chr17:2001-2500:0")]
    assert events[0].start == 1000 and events[0].end == 3000
    copy_number = simulate.copy_number_at(events, "chr17", np.array([500, 1500, 2200, 2800, 3000]))
    assert copy_number.tolist() == [2, 4, 0, 4, 2]
    assert simulate.plasma_ratio(0.2, 20) == pytest.approx(2.8)
    with pytest.raises(InputError, match="must look like"):
        simulate.parse_event("chr17:1-10")


def test_presets_use_scaled_arms(reference):
    model = io.read_simulated_reference(reference)
    assembly = io.load_assembly("GRCh38")
    crc = {e.name: e for e in simulate.preset_events("crc_typical", model, assembly)}
    assert set(crc) == {"8q_gain", "13_gain", "18_loss", "20q_gain"}
    assert crc["8q_gain"].start == model["arm_boundaries"]["chr8"]
    assert crc["18_loss"].copy_number == 1
    (arm,) = simulate.preset_events("arm_gain_17q", model, assembly)
    assert (arm.start, arm.end, arm.copy_number) == (25_100_000, 83_257_441, 3)


# ---------------------------------------------------------------- samples

def test_wgs_erbb2_counts_match_the_mixture(reference, genome_bins, wgs_tumor):
    """Amplicon bins (which hold ERBB2's) against the rest of the locus, at 0.5x: tolerance ~12%."""
    truth = truth_of(wgs_tumor)
    assert truth["expected_erbb2_plasma_ratio"] == pytest.approx(2.8)
    assert truth["erbb2_tumor_copy_number"] == ERBB2_COPY_NUMBER and truth["mode"] == "wgs"
    counts = count_bam(wgs_tumor, genome_bins)
    bins = genome_bins
    in_locus = (bins.chrom == "chr17") & (bins.start >= LOCUS[0]) & (bins.end <= LOCUS[1])
    amplicon = in_locus & (bins.start >= AMPLICON[0]) & (bins.end <= AMPLICON[1])
    assert any("ERBB2" in gene for gene in bins.gene[amplicon])
    windows, expected = normal_expectation(reference, truth)
    on_17 = windows.contig == "chr17"
    window_in_amplicon = on_17 & (windows.start >= AMPLICON[0]) & (windows.end <= AMPLICON[1])
    window_in_flank = on_17 & (windows.start >= LOCUS[0]) & (windows.end <= LOCUS[1]) & ~window_in_amplicon
    relative_sd = check_mixture_ratio(counts.count[amplicon].sum(), counts.count[in_locus & ~amplicon].sum(),
                                      expected[window_in_amplicon].sum(), expected[window_in_flank].sum(),
                                      window_in_amplicon.sum(), window_in_flank.sum())
    assert relative_sd < 0.04  # deep enough to tell 2.8 from, say, 2.4


def test_panel_erbb2_counts_match_the_mixture(reference, panel_targets):
    """Targets in the amplicon against locus targets outside it, at 2000x on target: tolerance ~8%."""
    bam = panel_sample(reference, panel_targets, "PANEL1", 21, TUMOR_FRACTION, 2000)
    truth = truth_of(bam)
    assert truth["mode"] == "panel" and truth["panel_depth"] == 2000
    bed = io.read_bed(panel_targets)
    targets = (bed["chrom"].to_numpy(), bed["start"].to_numpy(), bed["end"].to_numpy())
    windows, expected = normal_expectation(reference, truth, targets)
    bins_path = reference.with_name("panel_bins.tsv")
    assert run("bins", "--quiet", "--fasta", reference, "--targets", panel_targets, "-o", bins_path) == 0
    bins = io.read_bins(bins_path)[0]
    counts = count_bam(bam, bins)
    assert np.array_equal(bins.start, windows.start)  # one bin per target, in the same order
    amplicon = (bins.start >= AMPLICON[0]) & (bins.end <= AMPLICON[1])
    flank = (bins.start >= LOCUS[0]) & (bins.end <= LOCUS[1]) & ~amplicon
    relative_sd = check_mixture_ratio(counts.count[amplicon].sum(), counts.count[flank].sum(),
                                      expected[amplicon].sum(), expected[flank].sum(), amplicon.sum(), flank.sum())
    assert relative_sd < 0.03


def test_tumor_fragments_are_shorter(reference, panel_targets, genome_bins, modelled_short_share):
    """Modes 148 and 167 bp; the 90-150 bp share is what the mixture model integrates to (normal ~16%,
    tumour ~47%: selecting short fragments enriches tumour DNA ~2.9-fold, Mouliere 2018 saw > 2-fold)."""
    modes, short_share = {}, {}
    for name, origin, tumor_fraction in (("PURE_TUMOR", "tumor", 1.0), ("PURE_NORMAL", "normal", 0.0)):
        counts = count_bam(panel_sample(reference, panel_targets, name, 31, tumor_fraction, 300), genome_bins)
        modes[name] = counts.fragment_length_mode
        short_share[name] = counts.short_count.sum() / counts.count.sum()
        assert short_share[name] == pytest.approx(modelled_short_share(origin), abs=0.01)
    assert abs(modes["PURE_TUMOR"] - 148) <= 4 and abs(modes["PURE_NORMAL"] - 167) <= 4
    assert 2.5 < short_share["PURE_TUMOR"] / short_share["PURE_NORMAL"] < 3.3


def test_fragment_size_options_move_the_tumour_and_amplicon_peaks(reference, panel_targets, genome_bins):
    """--tumor-fragment-mode 136 moves the tumour's 90-150 bp share to what the moved mixture integrates to
    (~64%), and --amplicon-fragment-mode 165 gives tumour fragments inside the ERBB2 amplicon their own (~23%),
    leaving the flanking targets alone. An explicit default peak changes nothing."""
    bam = simulate_sample(reference, reference.with_name("PEAKS.bam"), "--seed", 33, "--sample", "PEAKS",
                          "--tumor-fraction", 1.0, "--panel", panel_targets, "--panel-depth", 300,
                          "--off-target-depth", 0, "--tumor-fragment-mode", 136, "--amplicon-fragment-mode", 165)
    models = truth_of(bam)["fragment_length_model"]
    assert models["tumor"][0]["mean"] == 136 and models["amplicon"][0]["mean"] == 165
    counts = count_bam(bam, genome_bins)
    amplicon = (genome_bins.chrom == "chr17") & (genome_bins.start >= AMPLICON[0]) & (genome_bins.end <= AMPLICON[1])
    flank = (genome_bins.chrom == "chr17") & (genome_bins.start >= LOCUS[0]) & (genome_bins.end <= LOCUS[1]) & ~amplicon
    for inside, origin, expected in ((amplicon, "amplicon", 0.23), (flank, "tumor", 0.64)):
        share = counts.short_count[inside].sum() / counts.count[inside].sum()
        modelled = simulate.short_fragment_share(models[origin], 90, 150)
        assert share == pytest.approx(modelled, abs=0.015) and modelled == pytest.approx(expected, abs=0.01)
    default = panel_sample(reference, panel_targets, "PEAKS_DEFAULT", 34, 0.5, 100)
    explicit = simulate_sample(reference, reference.with_name("PEAKS_EXPLICIT.bam"), "--seed", 34, "--sample",
                               "PEAKS_DEFAULT", "--tumor-fraction", 0.5, "--panel", panel_targets, "--panel-depth",
                               100, "--off-target-depth", 0, "--tumor-fragment-mode", 148)
    assert np.array_equal(count_bam(default, genome_bins).short_count, count_bam(explicit, genome_bins).short_count)


def test_records_are_well_formed_and_duplicates_flagged(wgs_tumor, genome_bins):
    """Duplicate share ~ --duplicate-rate (tolerance 4 binomial sd); both mates of a copy carry 0x400."""
    truth = truth_of(wgs_tumor)
    counts = count_bam(wgs_tumor, genome_bins)
    rate, n = truth["duplicate_rate"], truth["n_fragments"]
    assert abs(counts.duplicate_fraction - rate) < 4 * np.sqrt(rate * (1 - rate) / n)
    assert counts.outcomes["records_seen"] == truth["n_records"]
    assert counts.outcomes["unmapped"] == 2 * truth["n_unmapped_pairs"] > 0
    flags_by_name: dict[str, list] = {}
    with pysam.AlignmentFile(str(wgs_tumor)) as bam:
        assert bam.header.to_dict()["RG"] == [{"ID": "T1", "SM": "T1", "LB": "T1", "PL": "ILLUMINA"}]
        for record in bam.fetch("chr17", 30_000_000, 31_000_000):
            flags_by_name.setdefault(record.query_name, []).append(record)
    pairs = [records for records in flags_by_name.values() if len(records) == 2]
    assert len(pairs) > 1000
    for first, second in pairs:
        assert (first.flag & 0x400) == (second.flag & 0x400)
        assert first.is_proper_pair and first.is_read1 != second.is_read1
        assert first.template_length == -second.template_length
        assert first.reference_start == second.next_reference_start
        assert first.cigarstring == f"{min(100, abs(first.template_length))}M"


@pytest.mark.parametrize("mode", ["wgs", "panel"])
def test_counts_without_a_bam_equal_counting_the_bam(reference, panel_targets, tmp_path, mode):
    """``simulate sample --bins`` must give exactly what ``count`` makes of the simulated BAM: every bin of
    both channels, every record outcome and the fragment-length histogram."""
    bins_path = tmp_path / "bins.tsv"
    design = ["--seed", 41, "--sample", "X", "--tumor-fraction", 0.3, "--preset", "crc_typical",
              "--preset", "erbb2_focal"]
    if mode == "wgs":
        assert run("bins", "--quiet", "--fasta", reference, "-o", bins_path) == 0
        design += ["--depth", 0.3]
    else:
        assert run("bins", "--quiet", "--fasta", reference, "--targets", panel_targets, "-o", bins_path) == 0
        design += ["--panel", panel_targets, "--panel-depth", 300, "--off-target-depth", 0.1]
    bins = io.read_bins(bins_path)[0]
    bam = simulate_sample(reference, tmp_path / "x.bam", *design)
    direct = simulate_sample(reference, tmp_path / "y.counts.tsv", "--bins", bins_path, *design)
    from_bam, simulated = count_bam(bam, bins), io.read_counts(direct)
    assert from_bam.count.sum() > 10_000 and from_bam.outcomes["low_mapq"] > 0
    np.testing.assert_array_equal(simulated.count, from_bam.count)
    np.testing.assert_array_equal(simulated.short_count, from_bam.short_count)
    np.testing.assert_array_equal(simulated.fragment_length_histogram, from_bam.fragment_length_histogram)
    assert simulated.outcomes == from_bam.outcomes and simulated.sample == from_bam.sample
    assert simulated.metadata["filters"] == from_bam.metadata["filters"]
    truth_direct = truth_of(direct)
    assert truth_direct.pop("bins")["path"] == str(bins_path)
    assert truth_direct == truth_of(bam)


def test_low_mappability_blocks_have_low_mapq(reference, wgs_tumor):
    model = io.read_simulated_reference(reference)
    contig, start, end = next(b for b in model["low_mappability"] if b[0] == "chr17")
    with pysam.AlignmentFile(str(wgs_tumor)) as bam:
        mapq = np.array([r.mapping_quality for r in bam.fetch(contig, start + 1000, end - 1000)])
    assert len(mapq) > 20 and np.mean(mapq <= simulate.LOW_MAPQ_MAX) > 0.75


def test_same_seed_same_bytes(reference, tmp_path):
    options = ("--sample", "D1", "--depth", 0.05, "--tumor-fraction", 0.3, "--preset", "crc_typical",
               "--preset", "erbb2_focal")
    first = simulate_sample(reference, tmp_path / "a.bam", "--seed", 5, *options)
    second = simulate_sample(reference, tmp_path / "b.bam", "--seed", 5, *options)
    other = simulate_sample(reference, tmp_path / "c.bam", "--seed", 6, *options)
    assert first.read_bytes() == second.read_bytes()
    assert Path(f"{first}.bai").read_bytes() == Path(f"{second}.bai").read_bytes()
    assert truth_of(first) == truth_of(second)
    assert first.read_bytes() != other.read_bytes()
    assert [e["name"] for e in truth_of(first)["events"]] == ["8q_gain", "13_gain", "18_loss", "20q_gain",
                                                              "ERBB2_focal"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bam", "a.bam.bai", "a.truth.json", "b.bam",
                                                          "b.bam.bai", "b.truth.json", "c.bam", "c.bam.bai",
                                                          "c.truth.json"]


# ---------------------------------------------------------------- cohort and CLI

def test_cohort_folder(tmp_path):
    out = tmp_path / "cohort"
    assert run("simulate", "cohort", "--quiet", "-o", out, "--normals", 2, "--scale", SCALE, "--depth", 0.02) == 0
    sheet = pd.read_csv(out / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(sheet.columns) == ["sample", "patient", "date", "role", "bam"]
    assert sheet["sample"].tolist() == ["N01", "N02", "P1_baseline", "P1_day21", "P1_progression"]
    assert sheet["role"].tolist() == ["normal"] * 2 + ["plasma"] * 3
    assert sheet["patient"].tolist() == ["NA", "NA", "P1", "P1", "P1"]
    assert sheet["date"].tolist() == ["NA", "NA", "2026-01-05", "2026-01-26", "2026-04-20"]
    assert all((out / bam).is_file() and (out / f"{bam}.bai").is_file() for bam in sheet["bam"])
    truth = pd.read_csv(out / "truth.tsv", sep="\t", comment="#")
    assert truth["tumor_fraction"].tolist() == [0.0, 0.0, 0.2, 0.05, 0.3]
    assert truth["erbb2_tumor_copy_number"].tolist() == [2, 2, 20, 20, 20]
    assert truth["expected_erbb2_plasma_ratio"].tolist() == pytest.approx([1, 1, 2.8, 1.45, 3.7])
    assert (out / "reference.fa.fai").is_file() and (out / "reference.fa.her2cnv.json").is_file()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"her2cnv: error: [^\n]+", err), err
    return err


def test_missing_reference_exits_2_and_writes_nothing(tmp_path, capsys):
    assert run("simulate", "sample", "--quiet", "--reference", tmp_path / "nope.fa", "-o", tmp_path / "x.bam",
               "--seed", 1, "--sample", "X") == 2
    assert "nope.fa" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_bad_sample_inputs_exit_2(reference, tmp_path, capsys):
    base = ("simulate", "sample", "--quiet", "--reference", reference, "-o", tmp_path / "x.bam", "--seed", 1)
    assert run(*base, "--sample", "../escape") == 2
    assert "not safe" in one_line_error(capsys)
    assert run(*base, "--sample", "X", "--event", "chr5:1-1000:4") == 2
    assert "chr5" in one_line_error(capsys)
    assert run(*base, "--sample", "X", "--tumor-fraction", 1.5) == 2
    assert "--tumor-fraction" in one_line_error(capsys)
    assert run(*base, "--sample", "X", "--tumor-fragment-mode", 40) == 2
    assert "--tumor-fragment-mode must be 100-200 bp" in one_line_error(capsys)
    assert run(*base, "--sample", "X", "--preset", "crc_typical", "--amplicon-fragment-mode", 140) == 2
    assert "needs an ERBB2 amplicon" in one_line_error(capsys)
    plain = tmp_path / "plain.fa"
    plain.write_text(">chr17\nACGT\n")
    pysam.faidx(str(plain))
    assert run("simulate", "sample", "--quiet", "--reference", plain, "-o", tmp_path / "x.bam", "--seed", 1,
               "--sample", "X") == 2
    assert "simulate reference" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.fa", "plain.fa.fai"]


def test_reference_refuses_bad_options(tmp_path, capsys):
    assert run("simulate", "reference", "--quiet", "-o", tmp_path / "r.fa", "--contigs", "chr99") == 2
    assert "chr99" in one_line_error(capsys)
    assert run("simulate", "reference", "--quiet", "-o", tmp_path / "r.fa", "--scale", 0.001) == 2
    assert "--scale" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []
