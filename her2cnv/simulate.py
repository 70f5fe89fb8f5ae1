"""Supporting functions for the 'simulate' and 'dilute' commands: cfDNA data with a known truth.

The panel of normals, the ERBB2 call and monitoring can only be tested against
samples whose copy numbers, tumour fraction and biases are known, so this
module makes them. The model, in the order it is applied:

Reference: random bases in GC isochores, N gaps (contig ends, a centromere
block at the arm boundary, a few small gaps), low-mappability blocks, and a
per-region capture/sequencing efficiency that every sample on the reference
shares (the systematic bias a panel of normals must learn). chr17 keeps its
real length (GRCh38, or GRCh37) so ERBB2 sits at its real coordinates; other
contigs are scaled down to keep files small.

Sample: per 1 kb window (or capture target), expected fragments =
depth / (2 x read length) x bases x (1 - N fraction) x mixture x GC bias x
efficiency, where mixture = (2(1 - TF) + TF x CN) / 2 is the plasma copy
number over 2. Counts are gamma-Poisson (overdispersed); each fragment is
tumour-derived with probability TF x CN / (2(1 - TF) + TF x CN), which decides
its length (tumour fragments are shorter). Fragments are placed by their
midpoint, the position ``her2cnv count`` assigns them by.

Every random draw comes from a generator seeded by (seed, stream, contig), so
equal arguments give byte-identical output and adding a contig does not
change the others. Coordinates are 0-based half-open.
"""
from __future__ import annotations

import heapq
import math
import zlib
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .errors import InputError
from .types import Assembly, check_safe_name

ASSEMBLY = "GRCh38"
DEFAULT_CONTIGS = ("chr17", "chr8", "chr13", "chr18", "chr20")
DEFAULT_SCALE = 0.2
MIN_CONTIG_LENGTH = 1_000_000
GRID = 1000  # gaps and blocks start and end on this grid, so 1 kb windows are all-N or N-free
WINDOW = 1000  # fragments are drawn per window of this width (and per capture target)

ISOCHORE_LENGTH = (100_000, 1_000_000)
ISOCHORE_GC = (0.35, 0.60)
END_GAP = 100_000  # N at both ends of every contig
CENTROMERE_GAP = 3_000_000  # N block centred on the arm boundary, scaled with the contig
SMALL_GAPS = 3  # per contig
SMALL_GAP_LENGTH = (10_000, 50_000)
LOW_MAPPABILITY_FRACTION = 0.015
LOW_MAPPABILITY_LENGTH = (20_000, 200_000)
EFFICIENCY_REGION = 20_000
EFFICIENCY_SD = 0.12  # lognormal sd of the per-region efficiency
SEQUENCE_CHUNK = 6_000_000

OVERDISPERSION = 0.01  # gamma-Poisson per window or target: variance = mean + 0.01 mean^2 (a 10% CV)
GC_CENTRE = 0.45
GC_SLOPE_SD = 1.0
GC_CURVATURE = (-12.0, -4.0)
# Gaussian mixtures (weight, mean, sd) in bp: mono- and di-nucleosomal peaks, and for normal cfDNA a
# sub-nucleosomal shoulder. 16% of normal and 47% of tumour fragments fall in 90-150 bp, so selecting them
# enriches tumour DNA 2.9-fold: Mouliere 2018 found > 2-fold in > 95% of samples (reference/SOURCES.md).
# (Until 2026-11-21 the tumour peak was narrow, sd 14, with a single-peak normal: an 8-fold enrichment that
# flattered every use of fragment size.)
FRAGMENT_LENGTH_MODEL = {
    "normal": [{"weight": 0.82, "mean": 167, "sd": 15}, {"weight": 0.06, "mean": 125, "sd": 18},
               {"weight": 0.12, "mean": 334, "sd": 25}],
    "tumor": [{"weight": 0.88, "mean": 148, "sd": 22}, {"weight": 0.12, "mean": 310, "sd": 25}],
    "min": 50,
    "max": 700,
}
TUMOR_FRAGMENT_MODE = FRAGMENT_LENGTH_MODEL["tumor"][0]["mean"]  # the tumour's mononucleosomal peak, bp
FRAGMENT_MODE_RANGE = (100, 200)
MAPQ = 60
LOW_MAPQ_MAX = 10
LOW_MAPQ_SHARE = 0.9  # share of fragments in low-mappability blocks with MAPQ 0-LOW_MAPQ_MAX
UNMAPPED_PAIR_RATE = 0.005
DEFAULT_SEED = 1
DEFAULT_DEPTH = 0.5
DEFAULT_PANEL_DEPTH = 500.0
DEFAULT_OFF_TARGET_DEPTH = 0.2
DEFAULT_READ_LENGTH = 100
DEFAULT_DUPLICATE_RATE = 0.05
DEFAULT_TUMOR_FRACTION = 0.2
# the default ERBB2 amplicon, 300 kb from NEUROD2 into IKZF3; on GRCh37 the same span about ERBB2's midpoint
DEFAULT_AMPLICON = {"GRCh38": ("chr17", 39_600_000, 39_900_000), "GRCh37": ("chr17", 37_756_253, 38_056_253)}
DEFAULT_ERBB2_COPY_NUMBER = 20.0
PRESETS = ("erbb2_focal", "arm_gain_17q", "crc_typical", "none")
ERBB2_EVENT = "ERBB2_focal"  # the name of the erbb2_focal preset's event

# random streams: one generator per (seed, stream[, contig])
SEQUENCE, GAPS, LOW_MAPPABILITY, EFFICIENCY, GC_BIAS, FRAGMENTS, UNMAPPED = range(7)

F_PAIRED, F_PROPER, F_UNMAPPED, F_MATE_UNMAPPED = 0x1, 0x2, 0x4, 0x8
F_REVERSE, F_MATE_REVERSE, F_READ1, F_READ2, F_DUPLICATE = 0x10, 0x20, 0x40, 0x80, 0x400
F_SECONDARY, F_QC_FAIL, F_SUPPLEMENTARY = 0x100, 0x200, 0x800
NOT_PRIMARY = F_SECONDARY | F_SUPPLEMENTARY


def _rng(seed: int, stream: int, contig: str | None = None) -> np.random.Generator:
    keys = [seed, stream] + ([zlib.crc32(contig.encode())] if contig is not None else [])
    return np.random.default_rng(keys)


def check_seed(seed: int) -> int:
    if not 0 <= seed < 2**63:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    return seed


# ---------------------------------------------------------------- reference

def reference_model(assembly: Assembly, contigs: list[str], scale: float, seed: int) -> dict:
    """Contig lengths, arm boundaries, N gaps, low-mappability blocks and efficiency parameters.

    chr17 is always included at full length; the other contigs and their arm
    boundaries are multiplied by ``scale``. Contigs are kept in assembly order.
    """
    check_seed(seed)
    if not 0 < scale <= 1:
        raise InputError(f"--scale must be in (0, 1], got {scale}")
    unknown = [c for c in contigs if c not in assembly.contig_lengths]
    if unknown:
        raise InputError(f"contig(s) {', '.join(unknown)} not in {assembly.name} "
                         f"(known: {', '.join(assembly.contig_lengths)})")
    wanted = set(contigs) | {"chr17"}
    factors = {c: 1.0 if c == "chr17" else scale for c in assembly.contig_lengths if c in wanted}
    lengths = {c: int(round(assembly.contig_lengths[c] * f)) for c, f in factors.items()}
    short = [c for c, n in lengths.items() if n < MIN_CONTIG_LENGTH]
    if short:
        raise InputError(f"--scale {scale} makes {', '.join(short)} shorter than {MIN_CONTIG_LENGTH:,} bp; "
                         "use a larger --scale")
    arms = {c: _on_grid(assembly.arm_boundaries[c] * f) for c, f in factors.items()}
    protected = {"chr17": [assembly.locus[1:]]}  # the fine-bin locus stays N-free and mappable
    gaps = {c: _gaps(seed, c, lengths[c], arms[c], factors[c], protected.get(c, [])) for c in lengths}
    return {
        "seed": seed,
        "assembly": assembly.name,
        "scale": scale,
        "contig_lengths": lengths,
        "scale_factors": factors,
        "arm_boundaries": arms,
        "n_gaps": [[c, s, e] for c in lengths for s, e in gaps[c]],
        "low_mappability": _low_mappability_blocks(seed, lengths, gaps, protected),
        "isochores": {"length": list(ISOCHORE_LENGTH), "gc": list(ISOCHORE_GC)},
        "efficiency": {"seed": seed, "region_size": EFFICIENCY_REGION, "sd": EFFICIENCY_SD,
                       "smoothing": "3-region moving average of normal deviates, rescaled to unit variance"},
    }


def _on_grid(position: float) -> int:
    return int(round(position / GRID)) * GRID


def _overlaps(start: int, end: int, intervals) -> bool:
    return any(start < e and s < end for s, e in intervals)


def _gaps(seed: int, contig: str, length: int, arm: int, factor: float, protected) -> list[tuple[int, int]]:
    """N gaps of one contig, sorted and merged: both ends, a centromere block, a few small gaps."""
    half = max(GRID, _on_grid(CENTROMERE_GAP * factor / 2))
    gaps = [(0, END_GAP), (length - END_GAP, length), (arm - half, arm + half)]
    rng = _rng(seed, GAPS, contig)
    while len(gaps) < 3 + SMALL_GAPS:
        size = _on_grid(rng.uniform(*SMALL_GAP_LENGTH))
        start = _on_grid(rng.uniform(END_GAP, length - END_GAP - size))
        if not _overlaps(start, start + size, protected):
            gaps.append((start, start + size))
    merged: list[list[int]] = []
    for start, end in sorted(gaps):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, min(end, length)])
    return [(s, e) for s, e in merged]


def _low_mappability_blocks(seed: int, lengths: dict[str, int], gaps, protected) -> list[list]:
    """About LOW_MAPPABILITY_FRACTION of each contig in blocks, away from N gaps and the ERBB2 locus."""
    blocks = []
    for contig, length in lengths.items():
        rng = _rng(seed, LOW_MAPPABILITY, contig)
        avoid = list(gaps[contig]) + list(protected.get(contig, []))
        covered, budget = 0, LOW_MAPPABILITY_FRACTION * length
        for _ in range(1000):  # rejection sampling; a short contig may fill up early
            if covered >= budget:
                break
            size = _on_grid(rng.uniform(*LOW_MAPPABILITY_LENGTH))
            start = _on_grid(rng.uniform(0, length - size))
            if not _overlaps(start, start + size, avoid):
                avoid.append((start, start + size))
                blocks.append([contig, start, start + size])
                covered += size
    return sorted(blocks, key=lambda b: (list(lengths).index(b[0]), b[1]))


def contig_sequence(model: dict, contig: str):
    """Yield the bases of one contig (uint8 ASCII) in chunks: GC isochores, then N gaps.

    One random byte per base decides both G/C-versus-A/T (below the isochore's
    GC threshold) and which of the two (its lowest bit), so a base costs a byte.
    """
    length = model["contig_lengths"][contig]
    rng = _rng(model["seed"], SEQUENCE, contig)
    boundaries = [0]
    while boundaries[-1] < length:
        boundaries.append(min(length, boundaries[-1] + int(rng.integers(*ISOCHORE_LENGTH))))
    boundaries = np.array(boundaries, dtype=np.int64)
    threshold = (np.round(rng.uniform(*ISOCHORE_GC, len(boundaries) - 1) * 128) * 2).astype(np.int64)
    letters = np.frombuffer(b"ATCG", dtype=np.uint8)
    gaps = [(s, e) for c, s, e in model["n_gaps"] if c == contig]
    for chunk_start in range(0, length, SEQUENCE_CHUNK):
        chunk_end = min(length, chunk_start + SEQUENCE_CHUNK)
        first = np.searchsorted(boundaries, chunk_start, side="right") - 1
        last = np.searchsorted(boundaries, chunk_end, side="left")
        edges = np.clip(boundaries[first:last + 1], chunk_start, chunk_end)
        per_base = np.repeat(threshold[first:last], np.diff(edges))
        random = rng.integers(0, 256, chunk_end - chunk_start, dtype=np.uint8)
        bases = letters[(random < per_base) * 2 + (random & 1)]
        for start, end in gaps:
            if start < chunk_end and end > chunk_start:
                bases[max(start, chunk_start) - chunk_start:min(end, chunk_end) - chunk_start] = ord("N")
        yield bases


def region_efficiency(efficiency: dict, contig: str, length: int) -> np.ndarray:
    """Multiplicative capture/sequencing efficiency per ``region_size`` region of one contig (mean ~1).

    Lognormal with a short moving average, so neighbouring regions are alike, as
    real capture and mappability biases are; drawn from the reference's seed, so
    every sample on the reference shares it.
    """
    n_regions = -(-length // efficiency["region_size"])
    deviates = _rng(efficiency["seed"], EFFICIENCY, contig).standard_normal(n_regions + 2)
    smooth = (deviates[:-2] + deviates[1:-1] + deviates[2:]) / np.sqrt(3)
    sd = efficiency["sd"]
    return np.exp(sd * smooth - sd * sd / 2)


# ---------------------------------------------------------------- copy-number events

@dataclass(frozen=True)
class CopyNumberEvent:
    """A tumour copy number over [start, end) of a contig; the baseline elsewhere is 2."""

    chrom: str
    start: int
    end: int
    copy_number: float
    name: str


def plasma_ratio(tumor_fraction, copy_number):
    """Expected plasma coverage relative to a diploid locus: (2(1 - TF) + TF x CN) / 2."""
    return (2 * (1 - tumor_fraction) + tumor_fraction * np.asarray(copy_number, dtype=float)) / 2


def parse_event(text: str) -> CopyNumberEvent:
    """'chr17:39600001-39900000:20' (1-based inclusive region, then the tumour copy number)."""
    from .io import parse_region

    region, _, copy_number = text.rpartition(":")
    try:
        value = float(copy_number)
    except ValueError:
        raise InputError(f"--event {text!r} must look like chr17:39600001-39900000:20") from None
    if not region or not 0 <= value <= 1000:
        raise InputError(f"--event {text!r} must look like chr17:39600001-39900000:20 (copy number 0-1000)")
    chrom, start, end = parse_region(region)
    return CopyNumberEvent(chrom, start, end, value, f"{chrom}:{start + 1}-{end}")


def erbb2_amplicon(assembly: Assembly, size: int | None = None) -> tuple[str, int, int]:
    """The focal ERBB2 amplicon: chr17:39.6-39.9 Mb (GRCh38), or that span scaled to ``size`` about ERBB2's
    midpoint.

    Scaling about the gene's midpoint keeps ERBB2 inside the amplicon at any size.
    """
    chrom, start, end = DEFAULT_AMPLICON[assembly.name]
    if size is None:
        return chrom, start, end
    if size < 1000:
        raise InputError(f"--amplicon-size must be >= 1000 bp, got {size}")
    gene_start, gene_end = assembly.gene_span("ERBB2")
    centre = (gene_start + gene_end) / 2
    factor = size / (end - start)
    new_start = int(round(centre - (centre - start) * factor))
    return chrom, new_start, new_start + size


def preset_events(preset: str, model: dict, assembly: Assembly, amplicon_size: int | None = None,
                  erbb2_copy_number: float = DEFAULT_ERBB2_COPY_NUMBER) -> list[CopyNumberEvent]:
    """Events of a named tumour; arm-level events use the reference's (scaled) arm boundaries.

    ``crc_typical`` is the colorectal pattern +8q, +13, +20q, -18; combine it with
    ``erbb2_focal`` for an ERBB2-amplified colorectal tumour. Events on contigs
    the reference lacks are left out.
    """
    lengths, arms = model["contig_lengths"], model["arm_boundaries"]

    def q_arm(contig, copy_number, name):
        return CopyNumberEvent(contig, arms[contig], lengths[contig], copy_number, name)

    def whole(contig, copy_number, name):
        return CopyNumberEvent(contig, 0, lengths[contig], copy_number, name)

    if preset == "erbb2_focal":
        if not 0 <= erbb2_copy_number <= 1000:
            raise InputError(f"--erbb2-copy-number must be 0-1000, got {erbb2_copy_number}")
        events = [CopyNumberEvent(*erbb2_amplicon(assembly, amplicon_size), erbb2_copy_number, ERBB2_EVENT)]
    elif preset == "arm_gain_17q":
        events = [q_arm("chr17", 3.0, "17q_gain")]
    elif preset == "crc_typical":
        events = [q_arm("chr8", 3.0, "8q_gain"), whole("chr13", 3.0, "13_gain"),
                  whole("chr18", 1.0, "18_loss"), q_arm("chr20", 3.0, "20q_gain")]
    elif preset == "none":
        events = []
    else:
        raise InputError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    return [event for event in events if event.chrom in lengths]


def tumor_events(presets: list[str], event_texts: list[str], model: dict, assembly: Assembly,
                 amplicon_size: int | None = None,
                 erbb2_copy_number: float = DEFAULT_ERBB2_COPY_NUMBER) -> tuple[CopyNumberEvent, ...]:
    """The presets' events, then the ``--event`` ones, checked against the reference."""
    events = [event for preset in presets
              for event in preset_events(preset, model, assembly, amplicon_size, erbb2_copy_number)]
    events += [parse_event(text) for text in event_texts]
    check_events(events, model["contig_lengths"])
    return tuple(events)


def check_events(events: list[CopyNumberEvent], contig_lengths: dict[str, int]) -> None:
    for event in events:
        if event.chrom not in contig_lengths:
            raise InputError(f"event {event.name}: contig {event.chrom} is not in the reference "
                             f"({', '.join(contig_lengths)})")
        if event.end > contig_lengths[event.chrom]:
            raise InputError(f"event {event.name} runs past the end of {event.chrom} "
                             f"({contig_lengths[event.chrom]:,} bp)")


def copy_number_at(events: list[CopyNumberEvent], chrom: str, positions: np.ndarray) -> np.ndarray:
    """Tumour copy number at each position: 2, overridden by the events in order (later ones win)."""
    copy_number = np.full(len(positions), 2.0)
    for event in events:
        if event.chrom == chrom:
            copy_number[(positions >= event.start) & (positions < event.end)] = event.copy_number
    return copy_number


# ---------------------------------------------------------------- sample design and windows

@dataclass(frozen=True)
class SampleDesign:
    """Everything that defines one simulated plasma sample besides the reference."""

    sample: str
    seed: int
    tumor_fraction: float
    events: tuple[CopyNumberEvent, ...]
    depth: float  # genome-wide depth (off-target depth in panel mode), both mates' bases
    panel_depth: float | None = None  # on-target depth; None for low-pass WGS
    duplicate_rate: float = DEFAULT_DUPLICATE_RATE
    read_length: int = DEFAULT_READ_LENGTH
    # Fragment sizes differ between patients, and amplified DNA (on ecDNA, say) may not fragment like the rest of the
    # tumour's: the tumour's mononucleosomal peak, and the peak of tumour fragments inside the ERBB2 amplicon (None:
    # the same as the rest). Both shift the second look's evidence: benchmarks/fragment_size_variation.py.
    tumor_fragment_mode: float = TUMOR_FRAGMENT_MODE
    amplicon_fragment_mode: float | None = None

    def __post_init__(self):
        try:
            check_safe_name(self.sample)
        except ValueError as error:
            raise InputError(str(error)) from None
        check_seed(self.seed)
        if not 0 <= self.tumor_fraction <= 1:
            raise InputError(f"--tumor-fraction must be 0-1, got {self.tumor_fraction}")
        if not all(map(math.isfinite, (self.depth, self.panel_depth or 1.0))):
            raise InputError("depths must be finite numbers (--depth, --off-target-depth, --panel-depth)")
        if self.depth < 0 or (self.panel_depth is not None and self.panel_depth <= 0):
            raise InputError("depths must be positive (--depth/--off-target-depth >= 0, --panel-depth > 0)")
        if self.panel_depth is None and self.depth <= 0:
            raise InputError(f"--depth must be > 0, got {self.depth}")
        if not 0 <= self.duplicate_rate < 0.5:
            raise InputError(f"--duplicate-rate must be in [0, 0.5), got {self.duplicate_rate}")
        if not 20 <= self.read_length <= 1000:
            raise InputError(f"--read-length must be 20-1000, got {self.read_length}")
        low, high = FRAGMENT_MODE_RANGE
        for mode, option in ((self.tumor_fragment_mode, "--tumor-fragment-mode"),
                             (self.amplicon_fragment_mode, "--amplicon-fragment-mode")):
            if mode is not None and not low <= mode <= high:
                raise InputError(f"{option} must be {low}-{high} bp, got {mode}")
        if self.amplicon_fragment_mode is not None and self.amplicon is None:
            raise InputError("--amplicon-fragment-mode needs an ERBB2 amplicon (--preset erbb2_focal)")

    @property
    def mode(self) -> str:
        return "wgs" if self.panel_depth is None else "panel"

    @property
    def amplicon(self) -> CopyNumberEvent | None:
        """The erbb2_focal preset's event, if the tumour has it."""
        return next((event for event in self.events if event.name == ERBB2_EVENT), None)

    @property
    def fragment_length_models(self) -> dict[str, list[dict]]:
        """The length mixture of normal fragments, of tumour fragments, and of tumour fragments in the amplicon."""
        models = {"normal": FRAGMENT_LENGTH_MODEL["normal"], "tumor": tumor_fragment_model(self.tumor_fragment_mode)}
        if self.amplicon_fragment_mode is not None:
            models["amplicon"] = tumor_fragment_model(self.amplicon_fragment_mode)
        return models


@dataclass(frozen=True, eq=False)
class Windows:
    """The intervals fragments are drawn in: 1 kb tiles and/or capture targets, with their composition."""

    contig: np.ndarray  # str
    start: np.ndarray  # int64
    end: np.ndarray  # int64
    is_target: np.ndarray  # bool
    gc: np.ndarray  # float64, NaN where all N
    n_fraction: np.ndarray  # float64


def window_layout(contig_lengths: dict[str, int], tiles: bool, targets=None):
    """(contig, start, end, is_target): 1 kb tiles of every contig if ``tiles``, plus the targets.

    ``targets`` are merged, reference-named (chrom, start, end) arrays such as
    ``bins.target_layout`` returns; tiles under targets are kept, since the
    off-target background is drawn everywhere and capture adds to it.
    """
    pieces = []
    for contig, length in contig_lengths.items():
        if tiles:
            starts = np.arange(0, length, WINDOW, dtype=np.int64)
            pieces.append((np.full(len(starts), contig, dtype=object), starts,
                           np.minimum(starts + WINDOW, length), np.zeros(len(starts), dtype=bool)))
        if targets is not None:
            on_contig = targets[0] == contig
            pieces.append((targets[0][on_contig], targets[1][on_contig], targets[2][on_contig],
                           np.ones(int(on_contig.sum()), dtype=bool)))
    return tuple(np.concatenate(column) for column in zip(*pieces))


def base_composition(bases: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """GC fraction of non-N bases (NaN if none) and N fraction of each [start, end) of one contig.

    ``bases`` are upper-case ASCII codes. Windows on the 1 kb grid (nearly all) are summed
    as rows of a reshaped array, the few others (capture targets) one by one.
    """
    on_grid = (starts % WINDOW == 0) & (ends - starts == WINDOW)
    n_blocks = len(bases) // WINDOW

    def count(is_base: np.ndarray) -> np.ndarray:
        block_sums = is_base[:n_blocks * WINDOW].reshape(n_blocks, WINDOW).sum(axis=1, dtype=np.int64)
        counted = np.empty(len(starts), dtype=np.int64)
        counted[on_grid] = block_sums[starts[on_grid] // WINDOW]
        counted[~on_grid] = [np.count_nonzero(is_base[s:e])
                             for s, e in zip(starts[~on_grid].tolist(), ends[~on_grid].tolist())]
        return counted

    n_bases = count(bases == ord("N"))
    gc_bases = count((bases == ord("G")) | (bases == ord("C")))
    called = ends - starts - n_bases
    with np.errstate(invalid="ignore", divide="ignore"):
        gc = np.where(called > 0, gc_bases / called, np.nan)
    return gc, n_bases / (ends - starts)


def make_windows(model: dict, tiles: bool, targets, bases_of) -> Windows:
    """``window_layout`` plus each window's composition; ``bases_of(contig)`` returns the contig's bases."""
    contig, start, end, is_target = window_layout(model["contig_lengths"], tiles, targets)
    gc, n_fraction = np.full(len(start), np.nan), np.ones(len(start))
    for name in model["contig_lengths"]:
        rows = np.flatnonzero(contig == name)
        if len(rows):
            gc[rows], n_fraction[rows] = base_composition(bases_of(name), start[rows], end[rows])
    return Windows(contig.astype(str), start, end, is_target, gc, n_fraction)


def draw_gc_bias(seed: int) -> dict:
    """A per-sample GC-bias curve: factor = exp(slope (gc - centre) + curvature (gc - centre)^2)."""
    rng = _rng(seed, GC_BIAS)
    return {"form": "exp(slope*(gc-centre) + curvature*(gc-centre)^2), normalised to mean 1 per window class",
            "centre": GC_CENTRE, "slope": round(float(rng.normal(0, GC_SLOPE_SD)), 6),
            "curvature": round(float(rng.uniform(*GC_CURVATURE)), 6)}


def gc_bias_factor(gc: np.ndarray, gc_bias: dict) -> np.ndarray:
    """The (unnormalised) GC-bias factor; 0 where GC is undefined (all-N windows)."""
    offset = np.nan_to_num(gc - gc_bias["centre"], nan=0.0)
    return np.where(np.isnan(gc), 0.0, np.exp(gc_bias["slope"] * offset + gc_bias["curvature"] * offset**2))


def window_efficiency(model: dict, windows: Windows) -> np.ndarray:
    """The reference's efficiency of the region holding each window's midpoint."""
    factor = np.ones(len(windows.start))
    region_size = model["efficiency"]["region_size"]
    for contig, length in model["contig_lengths"].items():
        rows = windows.contig == contig
        middle = (windows.start[rows] + windows.end[rows]) // 2
        factor[rows] = region_efficiency(model["efficiency"], contig, length)[middle // region_size]
    return factor


def expected_fragments(model: dict, windows: Windows, design: SampleDesign, gc_bias: dict):
    """Expected fragments per window and the tumour-derived share of them.

    Depth counts both mates' bases, so a diploid window of ``w`` called bases at
    depth ``d`` holds ``d w / (2 read_length)`` fragments before biases. The GC
    factor is normalised to mean 1 over each window class (tiles, targets), so
    ``depth`` and ``panel_depth`` are the mean depths of a normal sample.
    """
    called = (windows.end - windows.start) * (1 - windows.n_fraction)
    depth = np.where(windows.is_target, design.panel_depth or 0.0, design.depth)
    gc_factor = gc_bias_factor(windows.gc, gc_bias)
    for in_class in (windows.is_target, ~windows.is_target):
        weight = called[in_class].sum()
        if weight > 0:
            gc_factor[in_class] /= (gc_factor[in_class] * called[in_class]).sum() / weight
    copy_number = np.empty(len(windows.start))
    for contig in model["contig_lengths"]:
        rows = windows.contig == contig
        copy_number[rows] = copy_number_at(list(design.events), contig,
                                           (windows.start[rows] + windows.end[rows]) // 2)
    tf = design.tumor_fraction
    mixture = plasma_ratio(tf, copy_number)
    with np.errstate(invalid="ignore", divide="ignore"):
        tumor_share = np.where(mixture > 0, tf * copy_number / (2 * mixture), 0.0)
    expected = (depth / (2 * design.read_length) * called * mixture * gc_factor
                * window_efficiency(model, windows))
    return expected, tumor_share


# ---------------------------------------------------------------- fragments and records

@dataclass(frozen=True, eq=False)
class Records:
    """SAM records of one contig (sorted by position) or of the unmapped pairs, as int64 arrays."""

    qname_id: np.ndarray
    flag: np.ndarray
    pos: np.ndarray
    mapq: np.ndarray
    cigar_length: np.ndarray
    mate_pos: np.ndarray
    tlen: np.ndarray
    n_fragments: int  # distinct molecules (duplicate copies not counted)
    n_tumor_fragments: int
    n_duplicate_fragments: int
    unmapped: bool = False

    def __len__(self) -> int:
        return len(self.flag)

    def tally(self) -> dict[str, int]:
        """The counts the truth JSON reports, to be summed over contigs."""
        return {"n_fragments": 0 if self.unmapped else self.n_fragments,
                "n_unmapped_pairs": self.n_fragments if self.unmapped else 0,
                "n_tumor_fragments": self.n_tumor_fragments,
                "n_duplicate_fragments": self.n_duplicate_fragments, "n_records": len(self)}


def tumor_fragment_model(mode: float) -> list[dict]:
    """The tumour's length mixture with its mononucleosomal peak at ``mode`` bp."""
    mononucleosomal, *rest = FRAGMENT_LENGTH_MODEL["tumor"]
    return [{**mononucleosomal, "mean": mode}, *rest]


def short_fragment_share(components: list[dict], low: int, high: int) -> float:
    """The share of a length mixture's fragments in ``low``-``high`` bp (inclusive, after rounding to whole bp)."""
    share = 0.0
    for component in components:
        length = NormalDist(component["mean"], component["sd"])
        share += component["weight"] * (length.cdf(high + 0.5) - length.cdf(low - 0.5))
    return share


def draw_fragment_lengths(rng: np.random.Generator, n: int, components: list[dict]) -> np.ndarray:
    weights = np.array([c["weight"] for c in components])
    which = np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(n), side="right")
    means = np.array([c["mean"] for c in components], dtype=float)[which]
    sds = np.array([c["sd"] for c in components], dtype=float)[which]
    lengths = np.round(means + sds * rng.standard_normal(n)).astype(np.int64)
    return np.clip(lengths, FRAGMENT_LENGTH_MODEL["min"], FRAGMENT_LENGTH_MODEL["max"])


def _in_blocks(positions: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Whether each position lies in one of the sorted, disjoint (start, end) ``blocks``."""
    if len(blocks) == 0:
        return np.zeros(len(positions), dtype=bool)
    index = np.searchsorted(blocks[:, 0], positions, side="right") - 1
    return (index >= 0) & (positions < blocks[np.maximum(index, 0), 1])


def contig_records(design: SampleDesign, contig: str, length: int, start: np.ndarray, end: np.ndarray,
                   expected: np.ndarray, tumor_share: np.ndarray, low_mappability: np.ndarray,
                   first_id: int) -> Records:
    """Draw the fragments of one contig's windows and turn them into sorted read-pair records."""
    rng = _rng(design.seed, FRAGMENTS, contig)
    shape = 1 / OVERDISPERSION
    n_per_window = rng.poisson(expected * rng.gamma(shape, 1 / shape, len(expected)))
    n_tumor_per_window = rng.binomial(n_per_window, tumor_share)
    window = np.repeat(np.arange(len(expected)), n_per_window)
    rank = np.arange(len(window)) - np.repeat(np.cumsum(n_per_window) - n_per_window, n_per_window)
    is_tumor = rank < n_tumor_per_window[window]
    middle = start[window] + (rng.random(len(window)) * (end - start)[window]).astype(np.int64)
    lengths = np.empty(len(window), dtype=np.int64)
    models = design.fragment_length_models
    for origin, rows in (("tumor", is_tumor), ("normal", ~is_tumor)):
        lengths[rows] = draw_fragment_lengths(rng, int(rows.sum()), models[origin])
    amplicon = design.amplicon
    if "amplicon" in models and amplicon.chrom == contig:  # drawn last, so the other draws stay as without it
        rows = is_tumor & (middle >= amplicon.start) & (middle < amplicon.end)
        lengths[rows] = draw_fragment_lengths(rng, int(rows.sum()), models["amplicon"])
    fragment_start = middle - lengths // 2
    inside = (fragment_start >= 0) & (fragment_start + lengths <= length)
    fragment_start, lengths, middle, is_tumor = fragment_start[inside], lengths[inside], middle[inside], is_tumor[inside]
    n = len(lengths)
    low = _in_blocks(middle, low_mappability) & (rng.random(n) < LOW_MAPQ_SHARE)
    mapq = np.where(low, rng.integers(0, LOW_MAPQ_MAX + 1, n), MAPQ)
    read1_leftmost = rng.random(n) < 0.5
    duplicated = np.flatnonzero(rng.random(n) < design.duplicate_rate / (1 - design.duplicate_rate))
    # the fragments, then their duplicate copies (same coordinates and strands, own names)
    take = np.concatenate([np.arange(n), duplicated])
    ids = first_id + np.arange(len(take))
    duplicate_flag = np.where(np.arange(len(take)) >= n, F_DUPLICATE, 0)
    fragment_start, lengths, mapq, read1_leftmost = (fragment_start[take], lengths[take], mapq[take],
                                                     read1_leftmost[take])
    read_length = np.minimum(lengths, design.read_length)
    right_start = fragment_start + lengths - read_length
    pair = F_PAIRED | F_PROPER | duplicate_flag
    left_flag = pair | F_MATE_REVERSE | np.where(read1_leftmost, F_READ1, F_READ2)
    right_flag = pair | F_REVERSE | np.where(read1_leftmost, F_READ2, F_READ1)
    pos = np.concatenate([fragment_start, right_start])
    flag = np.concatenate([left_flag, right_flag])
    qname_id = np.concatenate([ids, ids])
    order = np.lexsort((flag & F_READ2, qname_id, pos))

    def mates(left, right):
        return np.concatenate([left, right])[order]

    return Records(qname_id=qname_id[order], flag=flag[order], pos=pos[order], mapq=mates(mapq, mapq),
                   cigar_length=mates(read_length, read_length), mate_pos=mates(right_start, fragment_start),
                   tlen=mates(lengths, -lengths), n_fragments=n, n_tumor_fragments=int(is_tumor.sum()),
                   n_duplicate_fragments=len(duplicated))


def unmapped_records(design: SampleDesign, n_mapped_fragments: int, first_id: int) -> Records:
    """About UNMAPPED_PAIR_RATE extra pairs with both mates unmapped (flag 0x4|0x8), written last."""
    n = int(_rng(design.seed, UNMAPPED).binomial(n_mapped_fragments, UNMAPPED_PAIR_RATE))
    ids = first_id + np.arange(n)
    unplaced = F_PAIRED | F_UNMAPPED | F_MATE_UNMAPPED
    zeros = np.zeros(2 * n, dtype=np.int64)
    return Records(qname_id=np.repeat(ids, 2), flag=np.tile([unplaced | F_READ1, unplaced | F_READ2], n),
                   pos=zeros - 1, mapq=zeros, cigar_length=zeros, mate_pos=zeros - 1, tlen=zeros,
                   n_fragments=n, n_tumor_fragments=0, n_duplicate_fragments=0, unmapped=True)


def sample_records(model: dict, windows: Windows, design: SampleDesign, gc_bias: dict):
    """Yield (contig, Records) per contig in reference order, then (None, unmapped pairs)."""
    expected, tumor_share = expected_fragments(model, windows, design, gc_bias)
    blocks = {c: np.array([[s, e] for b, s, e in model["low_mappability"] if b == c], dtype=np.int64).reshape(-1, 2)
              for c in model["contig_lengths"]}
    next_id, n_mapped = 0, 0
    for contig, length in model["contig_lengths"].items():
        rows = windows.contig == contig
        records = contig_records(design, contig, length, windows.start[rows], windows.end[rows],
                                 expected[rows], tumor_share[rows], blocks[contig], next_id)
        next_id += len(records) // 2
        n_mapped += records.n_fragments
        yield contig, records
    yield None, unmapped_records(design, n_mapped, next_id)


class SimulatedCounts:
    """What ``her2cnv count`` would tally from a simulated BAM with ``filters``, tallied from the records directly.

    A validation grid of full-size genomes spends most of its time formatting SAM
    text and compressing BAMs only to count them again; ``simulate sample --bins``
    skips both. The rules are cext/_counts.pyx's, applied to arrays of records (the
    simulator's records are sorted, so its sort check cannot fail);
    tests/test_simulate.py checks that the result equals counting the BAM.
    """

    FLAG_REASONS = (("unmapped", F_UNMAPPED), ("secondary", F_SECONDARY), ("supplementary", F_SUPPLEMENTARY),
                    ("qc_fail", F_QC_FAIL), ("duplicate", F_DUPLICATE))

    def __init__(self, bins, references: tuple[str, ...], lengths: tuple[int, ...], filters, histogram_length: int,
                 source):
        """``references`` and ``lengths``: the simulated reference's contigs (``source``, named in errors)."""
        from .counts import bin_order_for_contigs

        self.filters, self.references = filters, references
        self.order, self.contig_first_bin = bin_order_for_contigs(bins, references, lengths, source)
        self.starts, self.ends = bins.start[self.order], bins.end[self.order]
        self.counts = np.zeros(len(bins), dtype=np.int64)
        self.short_counts = np.zeros(len(bins), dtype=np.int64)
        self.histogram = np.zeros(histogram_length, dtype=np.int64)
        self.outcomes = Counter()

    def add(self, contig: str | None, records: Records) -> None:
        """Tally one contig's records (``contig`` None: the unplaced unmapped pairs)."""
        flag, mapq, tlen, filters, outcomes = records.flag, records.mapq, records.tlen, self.filters, self.outcomes
        outcomes["records_seen"] += len(flag)
        primary = flag & (F_UNMAPPED | NOT_PRIMARY) == 0
        outcomes["mapped_primary"] += int(primary.sum())
        outcomes["duplicate_flagged_primary"] += int((primary & (flag & F_DUPLICATE != 0)).sum())
        excluded = flag & filters.exclude_flags
        unattributed = excluded != 0
        for reason, bit in self.FLAG_REASONS:  # the first matching reason, in the loop's order
            hit = unattributed & (excluded & bit != 0)
            outcomes[reason] += int(hit.sum())
            unattributed &= ~hit
        outcomes["other_excluded_flag"] += int(unattributed.sum())
        keep = excluded == 0

        def drop(reason: str, rows: np.ndarray) -> None:
            nonlocal keep
            rows = keep & rows
            outcomes[reason] += int(rows.sum())
            keep = keep & ~rows

        drop("unmapped", np.full(len(flag), contig is None) | (flag & F_UNMAPPED != 0))
        drop("low_mapq", mapq < filters.min_mapq)
        paired = flag & F_PAIRED != 0
        drop("improper_pair", paired & ((flag & F_PROPER == 0) | (tlen == 0)))
        drop("mate_of_counted_fragment", paired & (tlen < 0))
        length = np.where(paired, tlen, -1)
        last = len(self.histogram) - 1
        self.histogram += np.bincount(np.minimum(length[keep & paired], last), minlength=last + 1)
        drop("outside_fragment_length", np.where(paired, (length < filters.min_length) | (length > filters.max_length),
                                                 filters.length_window))
        where = records.pos + np.where(paired, length >> 1, 0)
        tid = self.references.index(contig) if contig is not None else None
        if tid is None:
            index = np.full(len(flag), -1)
        else:
            first, end = self.contig_first_bin[tid], self.contig_first_bin[tid + 1]
            index = first + np.searchsorted(self.starts[first:end], where, side="right") - 1
            index = np.where((index >= first) & (where < self.ends[np.clip(index, 0, len(self.ends) - 1)]), index, -1)
        drop("outside_bins", index < 0)
        outcomes["fragments_counted"] += int(keep.sum())
        self.counts += np.bincount(index[keep], minlength=len(self.counts))
        short = keep & (length >= filters.short_min) & (length <= filters.short_max)
        self.short_counts += np.bincount(index[short], minlength=len(self.counts))

    def in_bin_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(count, short_count) in the bins' own (file) order."""
        count, short_count = np.empty_like(self.counts), np.empty_like(self.short_counts)
        count[self.order], short_count[self.order] = self.counts, self.short_counts
        return count, short_count


def sample_truth(assembly: Assembly, design: SampleDesign, gc_bias: dict, tally: dict[str, int],
                 extra: dict) -> dict:
    """The truth JSON of one simulated sample.

    ``tally`` sums ``Records.tally`` over the records written; ``extra`` adds
    provenance (format, reference and targets fingerprints, version).
    """
    erbb2_start, erbb2_end = assembly.gene_span("ERBB2")
    erbb2_copy_number = float(copy_number_at(list(design.events), "chr17",
                                             np.array([(erbb2_start + erbb2_end) // 2]))[0])
    return {
        "sample": design.sample,
        "seed": design.seed,
        "tumor_fraction": design.tumor_fraction,
        "mode": design.mode,
        "depth": design.depth,
        "panel_depth": design.panel_depth,
        "read_length": design.read_length,
        "coordinates": "0-based, half-open",
        "events": [{"chrom": e.chrom, "start": e.start, "end": e.end, "copy_number": e.copy_number,
                    "name": e.name} for e in design.events],
        "erbb2_tumor_copy_number": erbb2_copy_number,
        "expected_erbb2_plasma_ratio": round(float(plasma_ratio(design.tumor_fraction, erbb2_copy_number)), 6),
        "fragment_length_model": {**design.fragment_length_models, "min": FRAGMENT_LENGTH_MODEL["min"],
                                  "max": FRAGMENT_LENGTH_MODEL["max"]},
        "gc_bias": gc_bias,
        "overdispersion": OVERDISPERSION,
        "mapq": {"normal": MAPQ, "low_mappability": f"0-{LOW_MAPQ_MAX} for {LOW_MAPQ_SHARE:.0%} of fragments"},
        "duplicate_rate": design.duplicate_rate,
        "unmapped_pair_rate": UNMAPPED_PAIR_RATE,
        **tally,
        **extra,
    }


# ---------------------------------------------------------------- in-silico dilution


@dataclass(frozen=True)
class DilutionPlan:
    """How many fragments to take from each input, and the read-name hash cut-off that takes them."""

    fraction: float
    seed: int
    available_tumor: int
    available_normal: int
    n_tumor: int
    n_normal: int
    tumor_threshold: int  # take fragments whose name hash is <= this (-1: none)
    normal_threshold: int


def _hash_key(seed: int) -> int:
    return zlib.crc32(f"her2cnv dilute {seed}".encode())


def _is_fragment_record(flag: int) -> bool:
    """A fragment is counted once: at its primary first mate, or its primary read if unpaired."""
    return not flag & NOT_PRIMARY and (not flag & F_PAIRED or bool(flag & F_READ1))


def scan_fragments(path, seed: int, threads: int = 1):
    """The header and the seeded read-name hash (uint32) of every fragment of a BAM: one pass."""
    from .counts import reading_alignments

    key = _hash_key(seed)
    hashes = []
    with reading_alignments(path, threads=threads) as alignments:
        header = alignments.header.to_dict()
        for record in alignments.fetch(until_eof=True):
            if _is_fragment_record(record.flag):
                hashes.append(zlib.crc32(record.query_name.encode(), key))
    return header, np.array(hashes, dtype=np.uint32)


def check_same_contigs(tumor_path, tumor_header: dict, normal_path, normal_header: dict) -> None:
    """Refuse inputs aligned to different references: records are merged by contig index."""
    tumor = [(sq["SN"], sq["LN"]) for sq in tumor_header.get("SQ", [])]
    normal = [(sq["SN"], sq["LN"]) for sq in normal_header.get("SQ", [])]
    if tumor != normal:
        first = next((f"{t[0]} ({t[1]:,} bp) vs {n[0]} ({n[1]:,} bp)" for t, n in zip(tumor, normal) if t != n),
                     f"{len(tumor)} vs {len(normal)} contigs")
        raise InputError(f"{tumor_path}: contigs differ from {normal_path} ({first}); "
                         "both BAMs must be aligned to the same reference")


def _threshold(hashes: np.ndarray, k: int) -> int:
    return int(np.partition(hashes, k - 1)[k - 1]) if k else -1


def plan_dilution(tumor_hashes: np.ndarray, normal_hashes: np.ndarray, fraction: float,
                  n_fragments: int | None, seed: int) -> DilutionPlan:
    """Take round(F N) tumour and the rest normal fragments, those with the smallest seeded name hashes.

    Default N is the largest total both inputs allow. Choosing by hash rank (not
    by a probability) hits the counts exactly, and both mates, being named alike,
    go together.
    """
    if not 0 <= fraction <= 1:
        raise InputError(f"--fraction must be 0-1, got {fraction}")
    available_tumor, available_normal = len(tumor_hashes), len(normal_hashes)
    if n_fragments is None:
        limits = ([available_tumor / fraction] if fraction > 0 else []) + \
                 ([available_normal / (1 - fraction)] if fraction < 1 else [])
        n_fragments = int(min(limits))
    if n_fragments <= 0:
        raise InputError(f"--fragments must be > 0 and the inputs must hold fragments (got {n_fragments})")
    n_tumor = int(round(fraction * n_fragments))
    n_normal = n_fragments - n_tumor
    if n_tumor > available_tumor or n_normal > available_normal:
        raise InputError(f"--fragments {n_fragments} at --fraction {fraction} needs {n_tumor:,} tumour and "
                         f"{n_normal:,} normal fragments; the inputs hold {available_tumor:,} and "
                         f"{available_normal:,}")
    return DilutionPlan(fraction, seed, available_tumor, available_normal, n_tumor, n_normal,
                        _threshold(tumor_hashes, n_tumor), _threshold(normal_hashes, n_normal))


def mixed_header(normal_header: dict, tumor_header: dict, sample: str) -> dict:
    """The normal's header with every read group (the tumour's added) renamed to sample ``sample``."""
    groups = [dict(group, SM=sample) for group in normal_header.get("RG", [])]
    known = {group["ID"] for group in groups}
    groups += [dict(group, SM=sample) for group in tumor_header.get("RG", []) if group["ID"] not in known]
    return {**normal_header, "HD": {**normal_header.get("HD", {"VN": "1.6"}), "SO": "coordinate"},
            "RG": groups or [{"ID": sample, "SM": sample}]}


def _selected_records(path, seed: int, threshold: int, source: str, tally: Counter, threads: int):
    from .counts import reading_alignments

    key = _hash_key(seed)
    with reading_alignments(path, threads=threads) as alignments:
        unplaced = alignments.nreferences
        last = (-1, -1)
        for record in alignments.fetch(until_eof=True):
            order = (record.reference_id if record.reference_id >= 0 else unplaced, record.reference_start)
            if order < last:
                raise InputError(f"{path}: not coordinate-sorted (a record at {record.reference_name}:"
                                 f"{record.reference_start + 1} follows a later one); sort it with 'samtools sort'")
            last = order
            if zlib.crc32(record.query_name.encode(), key) <= threshold:
                tally[source] += _is_fragment_record(record.flag)
                yield order, record


def dilution_records(tumor_path, normal_path, plan: DilutionPlan, tally: Counter, threads: int = 1):
    """The chosen records of both inputs merged in coordinate order; ``tally`` counts fragments per source."""
    streams = [_selected_records(tumor_path, plan.seed, plan.tumor_threshold, "tumor", tally, threads),
               _selected_records(normal_path, plan.seed, plan.normal_threshold, "normal", tally, threads)]
    for _, record in heapq.merge(*streams, key=lambda item: item[0]):
        yield record


def dilution_summary(plan: DilutionPlan, tally: Counter, extra: dict) -> dict:
    """Requested and achieved tumour fraction and counts (``extra``: format, inputs, sample, version)."""
    written = tally["tumor"] + tally["normal"]
    return {
        "requested_fraction": plan.fraction,
        "achieved_fraction": round(tally["tumor"] / written, 6) if written else None,
        "seed": plan.seed,
        "n_fragments": written,
        "n_tumor_fragments": tally["tumor"],
        "n_normal_fragments": tally["normal"],
        "planned_tumor_fragments": plan.n_tumor,
        "planned_normal_fragments": plan.n_normal,
        "available_tumor_fragments": plan.available_tumor,
        "available_normal_fragments": plan.available_normal,
        "fragment": "a read name: both mates, their duplicates-by-name and supplementary records go together",
        **extra,
    }


# ---------------------------------------------------------------- cohort

COHORT_NORMALS = 15  # the smallest panel of normals that her2cnv pon accepts without a warning
COHORT_DEPTH = 0.5
COHORT_PATIENT = "P1"
COHORT_SERIES = (  # (label, collection date, tumour fraction): a response at day 21, then progression
    ("baseline", "2026-01-05", 0.20),
    ("day21", "2026-01-26", 0.05),
    ("progression", "2026-04-20", 0.30),
)


@dataclass(frozen=True)
class CohortMember:
    design: SampleDesign
    patient: str | None  # None for normals
    date: str | None  # ISO collection date; None for normals
    role: str  # "normal" or "plasma"


def cohort_members(n_normals: int, seed: int, depth: float, model: dict, assembly: Assembly) -> list[CohortMember]:
    """Normals N01.. (TF 0, seeds 1000 seed + i) and patient P1's series (seeds 1000 seed + 100 + j).

    The patient's tumour carries the colorectal arm-level events (+8q, +13, +20q, -18) besides the ERBB2
    amplicon (CN 20): ERBB2-amplified colorectal cancers are chromosomally unstable, and those events are
    what makes the tumour fraction measurable.
    """
    if not 1 <= n_normals <= 99:
        raise InputError(f"--normals must be 1-99, got {n_normals}")
    check_seed(seed)
    normals = [CohortMember(SampleDesign(f"N{i:02d}", 1000 * seed + i, 0.0, (), depth), None, None, "normal")
               for i in range(1, n_normals + 1)]
    events = tumor_events(["crc_typical", "erbb2_focal"], [], model, assembly)
    series = [CohortMember(SampleDesign(f"{COHORT_PATIENT}_{label}", 1000 * seed + 100 + j, tumor_fraction, events,
                                        depth), COHORT_PATIENT, date, "plasma")
              for j, (label, date, tumor_fraction) in enumerate(COHORT_SERIES, 1)]
    return normals + series
