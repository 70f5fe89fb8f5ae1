"""``her2cnv simulate``: a synthetic reference, cfDNA samples with a known truth, and a ready cohort.

``simulate reference`` writes REF.fa (+ .fai) and the model sidecar REF.fa.her2cnv.json;
``simulate sample`` writes OUT.bam (+ .bai) and OUT.truth.json; ``simulate cohort``
writes a folder with a reference, normals, one patient's plasma series,
samples.tsv and truth.tsv.
"""
import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from .. import bins, io, simulate
from ..errors import InputError
from ..version import __version__
from .progress import progress_bar

log = logging.getLogger(__name__)


def add_parser(subparsers, common):
    parser = subparsers.add_parser("simulate", help="simulate a reference, cfDNA BAMs or a cohort with known truth",
                                   description="Simulate data with a known truth for testing and demos.")
    nested = parser.add_subparsers(dest="simulate_command", metavar="WHAT", required=True)

    reference = nested.add_parser("reference", parents=[common], help="a synthetic reference FASTA",
                                  description="Random sequence with GC isochores, N gaps and low-mappability "
                                              "blocks; chr17 at its real length, other contigs scaled. Writes "
                                              "REF.fa, REF.fa.fai and the model sidecar REF.fa.her2cnv.json.")
    reference.add_argument("-o", "--output", required=True, help="FASTA to write")
    _add_reference_options(reference)
    reference.add_argument("--contigs", default=",".join(simulate.DEFAULT_CONTIGS),
                           help="comma-separated contigs (UCSC names); chr17 is always included (default %(default)s)")
    reference.add_argument("--assembly", choices=sorted(simulate.DEFAULT_AMPLICON), default=simulate.ASSEMBLY,
                           help="whose contig lengths, arms and ERBB2 position (default %(default)s)")

    sample = nested.add_parser("sample", parents=[common], help="a cfDNA BAM with a truth JSON",
                               description="A coordinate-sorted, indexed paired-end BAM of plasma cfDNA: a diploid "
                                           "normal plus a tumour fraction carrying copy-number events. Writes "
                                           "OUT.bam, OUT.bam.bai and the truth JSON.")
    sample.add_argument("--reference", required=True, help="FASTA from 'her2cnv simulate reference'")
    sample.add_argument("-o", "--output", required=True, help="BAM to write (with --bins: counts table)")
    sample.add_argument("--bins", metavar="BINS.tsv",
                        help="write, instead of the BAM, the counts table 'her2cnv count --bins BINS.tsv' would make "
                             "of it (default filters): the same numbers, without writing and reading a BAM")
    sample.add_argument("--truth", help="truth JSON to write (default: OUT.truth.json)")
    sample.add_argument("--seed", type=int, required=True, help="random seed of this sample")
    sample.add_argument("--sample", required=True, help="sample name (@RG SM)")
    sample.add_argument("--tumor-fraction", type=float, default=simulate.DEFAULT_TUMOR_FRACTION,
                        help="share of plasma DNA from the tumour (default %(default)s)")
    sample.add_argument("--preset", action="append", choices=simulate.PRESETS,
                        help="tumour copy-number events; repeat to combine, later ones win where they overlap "
                             "(default erbb2_focal: chr17:39.6-39.9 Mb at CN 20 on GRCh38)")
    sample.add_argument("--event", action="append", default=[], metavar="CHROM:START-END:CN",
                        help="a tumour copy number over a 1-based inclusive region, applied after the presets; "
                             "repeatable, e.g. chr17:39600001-39900000:20")
    sample.add_argument("--amplicon-size", type=int, help="ERBB2 amplicon size in bp for erbb2_focal "
                                                          "(default 300000, scaled about ERBB2's midpoint)")
    sample.add_argument("--erbb2-copy-number", type=float, default=simulate.DEFAULT_ERBB2_COPY_NUMBER,
                        help="tumour copy number of the erbb2_focal amplicon (default %(default)s)")
    sample.add_argument("--tumor-fragment-mode", type=float, default=simulate.TUMOR_FRAGMENT_MODE, metavar="BP",
                        help="centre of the tumour's mononucleosomal fragment-length peak; fragment sizes vary "
                             "between patients (default %(default)s: 47%% of tumour against 16%% of normal "
                             "fragments in 90-150 bp)")
    sample.add_argument("--amplicon-fragment-mode", type=float, metavar="BP",
                        help="the same for tumour fragments inside the erbb2_focal amplicon, for amplified DNA "
                             "that fragments unlike the rest of the tumour (default: --tumor-fragment-mode)")
    sample.add_argument("--depth", type=float, help="low-pass WGS depth counting both mates' bases "
                                                    f"(default {simulate.DEFAULT_DEPTH}); not with --panel")
    sample.add_argument("--panel", metavar="TARGETS.bed", help="simulate a capture panel over these targets")
    sample.add_argument("--panel-depth", type=float, default=simulate.DEFAULT_PANEL_DEPTH,
                        help="on-target depth (default %(default)s)")
    sample.add_argument("--off-target-depth", type=float, default=simulate.DEFAULT_OFF_TARGET_DEPTH,
                        help="off-target background depth with --panel (default %(default)s)")
    _add_read_options(sample)

    cohort = nested.add_parser("cohort", parents=[common], help="a reference, normals and one patient's series",
                               description="A ready folder: reference.fa, normal plasma BAMs N01.., patient P1's "
                                           "plasma series (baseline TF 0.20, day 21 TF 0.05, progression TF 0.30; "
                                           "ERBB2 CN 20 on a colorectal +8q +13 +20q -18 background), samples.tsv (sample, patient, date, role, bam; normals "
                                           "have patient and date NA; bam paths are relative to the folder) and "
                                           "truth.tsv.")
    cohort.add_argument("-o", "--output", required=True, help="folder to write (created if missing)")
    cohort.set_defaults(output_is_directory=True)
    cohort.add_argument("--normals", type=int, default=simulate.COHORT_NORMALS,
                        help="number of normal plasma samples (default %(default)s)")
    cohort.add_argument("--depth", type=float, default=simulate.COHORT_DEPTH,
                        help="low-pass WGS depth of every sample (default %(default)s)")
    _add_reference_options(cohort)
    cohort.add_argument("--threads", type=int, default=2, help="BAM compression threads (default %(default)s)")
    parser.set_defaults(handler=run)


def _add_reference_options(parser):
    parser.add_argument("--scale", type=float, default=simulate.DEFAULT_SCALE,
                        help="length factor of contigs other than chr17 (default %(default)s)")
    parser.add_argument("--seed", type=int, default=simulate.DEFAULT_SEED, help="random seed (default %(default)s)")


def _add_read_options(parser):
    parser.add_argument("--duplicate-rate", type=float, default=simulate.DEFAULT_DUPLICATE_RATE,
                        help="share of output fragments that are flagged duplicate copies (default %(default)s)")
    parser.add_argument("--read-length", type=int, default=simulate.DEFAULT_READ_LENGTH,
                        help="read length in bp (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="BAM compression threads (default %(default)s)")


def run(args):
    if getattr(args, "threads", 0) < 0:
        raise InputError(f"--threads must be >= 0, got {args.threads}")
    {"reference": run_reference, "sample": run_sample, "cohort": run_cohort}[args.simulate_command](args)


def run_reference(args):
    assembly = io.load_assembly(args.assembly)
    contigs = [c.strip() for c in args.contigs.split(",") if c.strip()]
    model = simulate.reference_model(assembly, contigs, args.scale, args.seed)
    _write_reference(args, args.output, model)


def _write_reference(args, path, model: dict) -> None:
    bar = progress_bar(args, f"writing {path}")
    total, done = sum(model["contig_lengths"].values()), 0

    def chunks(contig):
        nonlocal done
        for bases in simulate.contig_sequence(model, contig):
            done += len(bases)
            bar(done / total)
            yield bases

    try:
        io.write_fasta(path, ((contig, chunks(contig)) for contig in model["contig_lengths"]))
    finally:
        bar.close()
    io.write_json(io.simulated_reference_sidecar(path),
                  {"format": io.SIMULATED_REFERENCE_FORMAT, "version": __version__, **model})


def run_sample(args):
    if args.panel and args.depth is not None:
        raise InputError("give either --depth (low-pass WGS) or --panel, not both")
    model = io.read_simulated_reference(args.reference)
    assembly = io.load_assembly(model["assembly"])
    events = simulate.tumor_events(args.preset or ["erbb2_focal"], args.event, model, assembly,
                                   args.amplicon_size, args.erbb2_copy_number)
    design = simulate.SampleDesign(
        sample=args.sample, seed=args.seed, tumor_fraction=args.tumor_fraction, events=events,
        depth=args.off_target_depth if args.panel else (simulate.DEFAULT_DEPTH if args.depth is None else args.depth),
        panel_depth=args.panel_depth if args.panel else None,
        duplicate_rate=args.duplicate_rate, read_length=args.read_length,
        tumor_fragment_mode=args.tumor_fragment_mode, amplicon_fragment_mode=args.amplicon_fragment_mode)
    targets = None
    if args.panel:
        bed = io.read_bed(args.panel)
        targets = bins.target_layout(bed["chrom"].to_numpy(), bed["start"].to_numpy(), bed["end"].to_numpy(),
                                     model["contig_lengths"], source=args.panel)[:3]
    windows = simulate.make_windows(model, design.depth > 0, targets,
                                    lambda contig: io.read_fasta_bases(args.reference, contig))
    provenance = {"targets": io.file_fingerprint(args.panel) if args.panel else None}
    if args.bins:
        sample_bins, _ = io.read_bins(args.bins)
        provenance["bins"] = io.file_fingerprint(args.bins)

        def write(records):
            _write_counts(args.output, sample_bins, model, design, records, provenance, args.reference)
    else:
        def write(records):
            _write_bam(args.output, model, design, records, args.threads)
    _write_sample(args, args.reference, model, assembly, windows, design, args.output,
                  args.truth or io.beside_output(args.output, "truth.json"), provenance, write)


def _write_sample(args, reference, model, assembly, windows, design, output, truth, provenance: dict, write) -> dict:
    """Simulate one sample, hand its (contig, records) stream to ``write`` and write ``truth``; returns the truth."""
    gc_bias = simulate.draw_gc_bias(design.seed)
    tally = Counter()
    bar = progress_bar(args, f"simulating {design.sample}")
    n_contigs = len(model["contig_lengths"]) + 1

    def records():
        for done, (contig, contig_records) in enumerate(simulate.sample_records(model, windows, design, gc_bias), 1):
            tally.update(contig_records.tally())
            yield contig, contig_records
            bar(done / n_contigs)

    try:
        write(records())
    finally:
        bar.close()
    truth_data = simulate.sample_truth(assembly, design, gc_bias, dict(tally), {
        "format": io.TRUTH_FORMAT, "version": __version__, "reference": io.file_fingerprint(reference),
        **provenance})
    io.write_json(truth, truth_data)
    log.info("%s: %d fragments, %d records, expected ERBB2 plasma ratio %.3f", output, truth_data["n_fragments"],
             truth_data["n_records"], truth_data["expected_erbb2_plasma_ratio"])
    return truth_data


def _write_bam(bam, model, design, records, threads: int) -> None:
    header = io.sam_header(model["contig_lengths"],
                           {"ID": design.sample, "SM": design.sample, "LB": design.sample, "PL": "ILLUMINA"},
                           {"ID": "her2cnv", "PN": "her2cnv", "VN": __version__})
    io.write_bam_from_sam(bam, header, (io.sam_records(contig, contig_records, f"{design.sample}:", design.sample)
                                        for contig, contig_records in records), threads)


def _write_counts(path, sample_bins, model, design, records, provenance: dict, reference) -> None:
    """The counts table 'her2cnv count' would make of the simulated BAM, tallied from the records."""
    from ..counts import HISTOGRAM_LENGTH, CountFilters
    from ..types import COUNT_OUTCOMES, FragmentCounts

    filters = CountFilters()
    counted = simulate.SimulatedCounts(sample_bins, tuple(model["contig_lengths"]),
                                       tuple(model["contig_lengths"].values()), filters, HISTOGRAM_LENGTH,
                                       reference)
    for contig, contig_records in records:
        counted.add(contig, contig_records)
    count, short_count = counted.in_bin_order()
    io.write_counts(path, FragmentCounts(
        sample=design.sample, bins=sample_bins, count=count, short_count=short_count,
        outcomes={name: counted.outcomes[name] for name in COUNT_OUTCOMES},
        fragment_length_histogram=counted.histogram,
        metadata={"tool": "her2cnv", "version": __version__, "command": "simulate sample --bins",
                  "filters": asdict(filters), "input": None, "reference": None,
                  "bins_checksum": sample_bins.checksum, "simulated": {"seed": design.seed, **provenance}}))


def run_cohort(args):
    directory = io.make_directory(args.output)
    assembly = io.load_assembly(simulate.ASSEMBLY)
    reference = directory / "reference.fa"
    model = simulate.reference_model(assembly, list(simulate.DEFAULT_CONTIGS), args.scale, args.seed)
    members = simulate.cohort_members(args.normals, args.seed, args.depth, model, assembly)
    _write_reference(args, reference, model)
    windows = simulate.make_windows(model, True, None, lambda contig: io.read_fasta_bases(reference, contig))
    rows = []
    for member in members:
        name = member.design.sample
        bam = directory / f"{name}.bam"
        truth = _write_sample(args, reference, model, assembly, windows, member.design, bam,
                              directory / f"{name}.truth.json", {"targets": None},
                              lambda records: _write_bam(bam, model, member.design, records, args.threads))
        rows.append({"sample": name, "patient": member.patient, "date": member.date, "role": member.role,
                     "bam": f"{name}.bam", "tumor_fraction": truth["tumor_fraction"],
                     "erbb2_tumor_copy_number": truth["erbb2_tumor_copy_number"],
                     "expected_erbb2_plasma_ratio": truth["expected_erbb2_plasma_ratio"],
                     "seed": truth["seed"], "truth": f"{name}.truth.json"})
    table = pd.DataFrame(rows)
    io.write_plain_table(directory / "samples.tsv", table[["sample", "patient", "date", "role", "bam"]])
    io.write_table(directory / "truth.tsv", table.drop(columns="bam"),
                   {"format": io.COHORT_TRUTH_FORMAT, "version": __version__, "seed": args.seed})
    log.info("%s: reference, %d samples, samples.tsv and truth.tsv", directory, len(members))
    others = sorted(path.name for path in directory.glob("*.bam") if path.stem not in set(table["sample"]))
    if others:  # an earlier cohort's samples, made on another reference: not listed, but beside these
        log.warning("%s: also holds %d BAM(s) of no sample of this cohort (%s), from an earlier run? They are not "
                    "in samples.tsv, and may be of another reference", directory, len(others), ", ".join(others[:5]))
