"""The data that flows between stages: frozen dataclasses of equal-length numpy arrays.

Each type checks its own invariants once, when built, so later code can trust
them. Coordinates are 0-based half-open everywhere inside her2cnv; ``io``
converts at the edges. This module imports nothing else from her2cnv.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # used with fullmatch: "$" would let a final "\n" through


def check_safe_name(name: str, what: str = "sample name") -> str:
    """Return ``name`` if it is safe as a file-name component, else raise ValueError.

    Sample and patient names become output file names, so they must not contain
    path separators, start with a dot or be empty.
    """
    if not SAFE_NAME.fullmatch(name or ""):
        raise ValueError(
            f"{what} {name!r} is not safe as a file name: use letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (at most 128 characters)"
        )
    return name


def canonical_contig(name: str) -> str:
    """'chr17' and '17' both become '17'; 'chrM' and 'MT' become 'M'."""
    bare = name[3:] if name.lower().startswith("chr") else name
    return "M" if bare.upper() in ("M", "MT") else bare


@dataclass(frozen=True, eq=False)
class Assembly:
    """A genome build: contig lengths, arm boundaries and the 17q12 amplicon genes."""

    name: str  # "GRCh38" or "GRCh37"
    contig_lengths: dict[str, int]  # UCSC-style names
    arm_boundaries: dict[str, int]  # p/q boundary (centromere) per contig
    gene_names: tuple[str, ...]
    gene_starts: np.ndarray  # on chr17, 0-based
    gene_ends: np.ndarray
    gene_is_core: np.ndarray  # bool: PGAP3-ERBB2-MIEN1-GRB7
    locus: tuple[str, int, int]  # region tiled with fine bins

    def gene_span(self, gene: str) -> tuple[int, int]:
        i = self.gene_names.index(gene)
        return int(self.gene_starts[i]), int(self.gene_ends[i])

    @property
    def core_span(self) -> tuple[int, int]:
        """PGAP3-ERBB2-MIEN1-GRB7: the ~100 kb that every real ERBB2 amplicon contains."""
        return int(self.gene_starts[self.gene_is_core].min()), int(self.gene_ends[self.gene_is_core].max())


BIN_KINDS = ("genome", "locus", "target", "offtarget")


@dataclass(frozen=True, eq=False)
class Bins:
    """Genomic bins in file order; per contig sorted and non-overlapping."""

    chrom: np.ndarray  # str
    start: np.ndarray  # int64
    end: np.ndarray  # int64
    kind: np.ndarray  # str, one of BIN_KINDS
    gene: np.ndarray  # str: comma-joined amplicon genes overlapped, "" for none
    gc: np.ndarray  # float64: GC fraction of non-N bases, NaN if all N
    n_fraction: np.ndarray  # float64
    assembly: str
    # length of each contig with bins in the FASTA they were made from (None for bins built in memory):
    # 'count' refuses a BAM whose contigs differ, which a bins file alone cannot show past its last bin
    contig_lengths: dict[str, int] | None = None

    def __post_init__(self):
        n = len(self.chrom)
        for name in ("start", "end", "kind", "gene", "gc", "n_fraction"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"bins: column {name} has {len(getattr(self, name))} rows, expected {n}")
        if n == 0:
            raise ValueError("bins: no bins")
        if np.any(self.start < 0) or np.any(self.end <= self.start):
            i = int(np.flatnonzero((self.start < 0) | (self.end <= self.start))[0])
            raise ValueError(f"bins: bin {self.describe(i)} has start >= end or a negative start")
        same = self.chrom[1:] == self.chrom[:-1]
        overlapping = same & (self.start[1:] < self.end[:-1])
        if np.any(overlapping):
            i = int(np.flatnonzero(overlapping)[0]) + 1
            raise ValueError(f"bins: bin {self.describe(i)} overlaps or precedes the bin before it")
        changes = self.chrom[np.r_[True, ~same]]
        if len(set(changes.tolist())) != len(changes):
            raise ValueError("bins: the bins of each contig must be contiguous in the file")
        spellings: dict[str, str] = {}  # 'chr17' and '17' are one contig to every later step
        for contig in changes.tolist():
            if spellings.setdefault(canonical_contig(contig), contig) != contig:
                raise ValueError(f"bins: contigs {spellings[canonical_contig(contig)]} and {contig} name the same "
                                 "chromosome")
        with np.errstate(invalid="ignore"):
            if np.any((self.gc < 0) | (self.gc > 1) | np.isinf(self.gc)):
                raise ValueError("bins: GC fractions must lie between 0 and 1 (or be NA where a bin is all N)")
            if not np.all((self.n_fraction >= 0) & (self.n_fraction <= 1)):
                raise ValueError("bins: N fractions must lie between 0 and 1")
        if self.contig_lengths is not None:
            for contig in changes.tolist():
                length = self.contig_lengths.get(contig)
                if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
                    raise ValueError(f"bins: no valid length recorded for contig {contig}")
                if self.end[self.chrom == contig].max() > length:
                    raise ValueError(f"bins: the bins of {contig} reach past its recorded length {length:,}")
        known = np.zeros(n, dtype=bool)
        for kind in BIN_KINDS:  # not np.unique: a sort, and it imports numpy.ma, ~10 ms of every 'count'
            known |= self.kind == kind
        unknown = set(self.kind[~known].tolist())
        if unknown:
            raise ValueError(f"bins: unknown bin kind(s) {sorted(unknown)}")

    def __len__(self) -> int:
        return len(self.chrom)

    def describe(self, i: int) -> str:
        return f"{self.chrom[i]}:{int(self.start[i])}-{int(self.end[i])}"

    @property
    def contigs(self) -> list[str]:
        """Contig names in file order."""
        _, first = np.unique(self.chrom, return_index=True)
        return [str(self.chrom[i]) for i in sorted(first)]

    @cached_property
    def checksum(self) -> str:
        """sha256 of every column and the assembly: equal checksums mean interchangeable bins. Not the
        coordinates alone: bins of another FASTA with the same contig lengths differ in GC, and GC
        correction uses the sample's copy of it, so counts made with them must not meet this panel.

        Computed once per file read, from the arrays' bytes (GC and N fraction at the 6 digits files keep,
        NaN in one form), the strings 32,768 at a time: genome-wide 10 kb bins as Python objects all at
        once take ~40 MB.
        """
        digest = hashlib.sha256(self.assembly.encode())
        for name in ("chrom", "kind", "gene"):
            column = getattr(self, name)
            digest.update(f"\n{name}\n".encode())
            for first in range(0, len(self), 1 << 15):
                digest.update("\n".join(column[first:first + (1 << 15)].tolist()).encode() + b"\n")
        for name in ("start", "end"):
            digest.update(f"\n{name}\n".encode() + np.ascontiguousarray(getattr(self, name), "<i8").tobytes())
        for name in ("gc", "n_fraction"):
            values = np.round(getattr(self, name).astype(np.float64), 6)
            values[np.isnan(values)] = np.nan
            digest.update(f"\n{name}\n".encode() + np.ascontiguousarray(values, "<f8").tobytes())
        return digest.hexdigest()


# The order of per-record outcomes that the counter tallies (cext/_counts.pyx fills them in this order).
COUNT_OUTCOMES = (
    "records_seen",
    "unmapped",
    "secondary",
    "supplementary",
    "qc_fail",
    "duplicate",
    "other_excluded_flag",
    "low_mapq",
    "improper_pair",
    "mate_of_counted_fragment",
    "outside_fragment_length",
    "outside_bins",
    "fragments_counted",
    "duplicate_flagged_primary",
    "mapped_primary",
)


@dataclass(frozen=True, eq=False)
class FragmentCounts:
    """Per-bin fragment counts of one sample, with the sample-level QC of the pass that made them."""

    sample: str
    bins: Bins
    count: np.ndarray  # int64 per bin: fragments in the length window
    short_count: np.ndarray  # int64 per bin: fragments in the short window (tumour-enriched)
    outcomes: dict[str, int]  # COUNT_OUTCOMES -> number of records
    fragment_length_histogram: np.ndarray  # int64; index = length in bp, last slot = that length or longer
    metadata: dict = field(default_factory=dict)  # provenance: version, filters, input, bins checksum

    def __post_init__(self):
        if len(self.count) != len(self.bins) or len(self.short_count) != len(self.bins):
            raise ValueError(f"counts for {self.sample}: {len(self.count)} rows but {len(self.bins)} bins")

    @property
    def fragment_length_mode(self) -> int | None:
        hist = self.fragment_length_histogram[:-1]
        return int(np.argmax(hist)) if hist.sum() else None

    @property
    def duplicate_fraction(self) -> float | None:
        mapped = self.outcomes.get("mapped_primary", 0)
        return self.outcomes.get("duplicate_flagged_primary", 0) / mapped if mapped else None


@dataclass(frozen=True, eq=False)
class Segments:
    """Runs of bins with one copy level, from ``segment.segment_profile``.

    Bin ranges are indices into the profile's bins, half-open ``[first_bin, end_bin)``;
    ``n_bins`` counts only the unmasked bins that informed the mean.
    """

    chrom: np.ndarray  # str
    first_bin: np.ndarray  # int64
    end_bin: np.ndarray  # int64
    n_bins: np.ndarray  # int64
    log2_ratio: np.ndarray  # float64: weighted mean
    ci_low: np.ndarray  # float64: 95% interval of the mean
    ci_high: np.ndarray

    def __post_init__(self):
        n = len(self.chrom)
        for name in ("first_bin", "end_bin", "n_bins", "log2_ratio", "ci_low", "ci_high"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"segments: column {name} has {len(getattr(self, name))} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.chrom)


class BinMask:
    """Why a bin is left out of normalisation and calling: the bits of ``Panel.mask`` (0 = usable). Plain ints,
    which numpy ORs into a uint8 array (an ``enum.IntFlag`` member it widens to int64, and refuses)."""

    ATYPICAL_DEPTH = 1  # median depth in the normals below half or above twice the typical depth
    NOISY = 2  # high residual spread in the normals
    EXTREME_GC = 4
    MOSTLY_N = 8
    SEX_CHROMOSOME = 16  # dosage differs between donors
    NO_GC = 32  # all N: no GC content

    @classmethod
    def reasons(cls) -> dict[str, int]:
        return {name.lower(): bit for name, bit in vars(cls).items() if name.isupper()}


@dataclass(frozen=True, eq=False)
class Panel:
    """A panel of normals for one count channel, built by ``pon.build_panel``.

    ``reference_log2`` is the normals' GC-corrected log2 depth per bin (``pon.reference_log2``);
    ``efficiency_log2`` the same shrunk towards its bin kind's median by its sampling noise, for weights
    (``pon.efficiency_log2``); ``basis`` holds orthonormal residual components (rows) that ``normalize``
    projects out; ``systematic_variance`` is the per-bin variance left after
    denoising beyond Poisson sampling, from cross-fitted normals; ``arm_level_error``
    is the error that does not average out over a chromosome arm (``pon.arm_level_error``).
    """

    channel: str  # one of normalize.CHANNELS
    bins_checksum: str
    assembly: str
    sample_names: tuple[str, ...]
    reference_log2: np.ndarray  # (n_bins,)
    efficiency_log2: np.ndarray  # (n_bins,)
    systematic_variance: np.ndarray  # (n_bins,)
    mask: np.ndarray  # (n_bins,) uint8 bit flags, see BinMask
    basis: np.ndarray  # (n_components, n_bins), zero at masked bins
    null_bins: np.ndarray  # (n_null_bins,) int64: bin indices of the chr17 profiles kept for nulls
    null_log2: np.ndarray  # (n_normals, n_null_bins): cross-fitted denoised log2 of each normal there
    arm_level_error: float  # log2 SD of arm levels in cross-fitted normals beyond their SEs (95% upper bound)
    normal_fragments: float | None = None  # the normals' median fragments counted (None: not known)

    def __post_init__(self):
        n = len(self.reference_log2)
        floats = ("reference_log2", "efficiency_log2", "systematic_variance", "basis", "null_log2")
        if any(getattr(self, name).dtype.kind != "f" for name in floats) or self.mask.dtype != np.uint8 \
                or self.null_bins.dtype.kind not in "iu" or self.reference_log2.ndim != 1 or self.basis.ndim != 2:
            raise ValueError("panel: arrays of the wrong type or shape")
        if len(self.systematic_variance) != n or len(self.efficiency_log2) != n or len(self.mask) != n \
                or self.basis.shape[1:] != (n,):
            raise ValueError("panel: per-bin arrays differ in length")
        if self.null_log2.shape != (len(self.sample_names), len(self.null_bins)):
            raise ValueError("panel: null profiles do not match the normals")
        if len(self.null_bins) and not (0 <= self.null_bins.min() and self.null_bins.max() < n):
            raise ValueError("panel: null profile bins lie outside the panel's bins")
        if np.any(self.systematic_variance[self.mask == 0] < 0):
            raise ValueError("panel: negative variances")

    @property
    def usable(self) -> np.ndarray:
        return self.mask == 0


@dataclass(frozen=True, eq=False)
class GcCurveError:
    """How the error of a sample's fitted GC curves reaches its bins (``normalize.gc_curve``).

    Bins of similar GC share one fitted correction, so its error does not average out over a segment's bins
    as their own noise does: over a focal amplicon, whose bins sit in one GC isochore, it is one common error.
    A coverage group's curve error at its grid nodes is ``loadings[group] @ xi`` in log2 units (after
    centring), with ``xi`` independent standard normal, one per GC slot's median; a bin takes the linear
    interpolation between nodes ``node`` and ``node + 1``.
    """

    group: np.ndarray  # int64 per bin: the coverage group whose curve corrected it, -1 for none
    node: np.ndarray  # int64 per bin: the grid node at or below its GC
    fraction: np.ndarray  # float64 per bin: its position between node and node + 1, in [0, 1]
    loadings: tuple[np.ndarray, ...]  # per group: (grid nodes x GC slots)

    def __post_init__(self):
        if not len(self.group) == len(self.node) == len(self.fraction):
            raise ValueError("GC curve error: per-bin arrays differ in length")


@dataclass(frozen=True, eq=False)
class Profile:
    """One sample's normalised copy-ratio profile (``normalize.log2_ratios``); NaN marks masked bins."""

    log2_ratio: np.ndarray  # denoised, centred on the autosomal genome-bin median
    weight: np.ndarray  # inverse variance of each log2 ratio
    expected_count: np.ndarray  # fragments expected in each bin at copy ratio 1
    noise: float  # MAPD of neighbouring genome bins
    locus_noise: float  # MAPD of neighbouring locus (fine) bins, NaN without them
    gc_bias: float  # log2 range of the GC fit over the central 90% of bins
    n_components: int  # panel components projected out
    gc_error: GcCurveError  # how the fitted GC curves' own error reaches each bin


@dataclass(frozen=True)
class Thresholds:
    """Calling and monitoring defaults from ``reference/thresholds.toml`` (derivations there)."""

    high_level_copy_number: float
    min_amplification_copy_number: float
    min_z_score: float
    detection_probability: float
    max_focal_span: int
    min_focal_z_score: float
    max_copy_state: int
    segment_error_floor: float
    state_penalty: float
    min_fit_improvement: float
    min_segment_bins: int
    min_reportable: float
    max_noise: float
    min_fragments: int
    min_erbb2_fragments: float
    max_gc_bias: float
    max_masked_fraction: float
    max_panel_depth_ratio: float
    response_fraction: float
    progression_fraction: float
    min_change_z_score: float

    def __post_init__(self):
        """Every threshold in its meaningful range: an override of NaN or a negative z-score would not fail,
        it would silently turn calls around."""
        above = {"high_level_copy_number": 2, "min_amplification_copy_number": 2, "min_z_score": 0,
                 "max_focal_span": 0, "min_focal_z_score": 0, "min_fit_improvement": 0, "max_noise": 0,
                 "max_gc_bias": 0, "progression_fraction": 0, "min_change_z_score": 0, "max_panel_depth_ratio": 0}
        at_least = {"max_copy_state": 3, "segment_error_floor": 0, "state_penalty": 0, "min_segment_bins": 1,
                    "min_fragments": 0, "min_erbb2_fragments": 0}
        fractions = {"detection_probability": "[0.5, 1)", "min_reportable": "(0, 1)",
                     "max_masked_fraction": "(0, 1]", "response_fraction": "(0, 1)"}
        in_range = {"[0.5, 1)": lambda v: 0.5 <= v < 1, "(0, 1)": lambda v: 0 < v < 1, "(0, 1]": lambda v: 0 < v <= 1}
        for name in (*above, *at_least, *fractions):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
                raise ValueError(f"threshold {name} must be a finite number, got {value!r}")
            whole = name in ("max_focal_span", "max_copy_state", "min_segment_bins", "min_fragments")
            if whole and value != int(value):
                raise ValueError(f"threshold {name} must be a whole number, got {value!r}")
            if name in above and not value > above[name]:
                raise ValueError(f"threshold {name} must be above {above[name]}, got {value!r}")
            if name in at_least and not value >= at_least[name]:
                raise ValueError(f"threshold {name} must be at least {at_least[name]}, got {value!r}")
            if name in fractions and not in_range[fractions[name]](value):
                raise ValueError(f"threshold {name} must lie in {fractions[name]}, got {value!r}")
        if self.min_amplification_copy_number > self.high_level_copy_number:
            raise ValueError("threshold min_amplification_copy_number must not exceed high_level_copy_number")


STATUSES = ("high_level_amplification", "low_level_gain", "not_detected", "indeterminate")


@dataclass(frozen=True)
class Erbb2Call:
    """The ERBB2 answer for one sample (``call.call_erbb2``); serialised as SAMPLE.call.json."""

    sample: str
    status: str  # one of STATUSES
    reason: str  # plain language
    log2_ratio: float  # ERBB2 level relative to the diploid baseline
    log2_ratio_se: float
    measured_on: str  # "segment" (the segment holding ERBB2), "core" (the amplicon core's bins) or "gene" (ERBB2's)
    core_log2_ratio: float  # the amplicon core's own bins (PGAP3-ERBB2-MIEN1-GRB7), relative to the diploid baseline
    z_score: float
    null_z_score: float | None  # against the panel's cross-fitted normals
    gain_detected: bool  # a significant ERBB2 gain in plasma, focal or not
    detectable_plasma_copy_number: float  # the plasma CN a core amplification reaches significance at, 95% of the time
    plasma_copy_number: float
    plasma_copy_number_ci95: tuple[float, float]
    tumor_copy_number: float | None
    tumor_copy_number_ci95: tuple[float, float] | None
    # the tumour CN at the plasma level min_z_score SEs below the estimate, top of the TF interval: a high-level
    # call needs it >= min_amplification_copy_number (call.classify)
    tumor_copy_number_floor: float | None
    focal: bool | None
    amplicon: dict | None  # chrom, start, end (0-based half-open), genes
    arm_log2_ratios: dict  # "17p", "17q" (outside the amplicon), relative to the diploid baseline
    limit_of_detection_copy_number: float | None
    qc: dict  # pass, reasons, metrics
    # "all" or "size_weighted": the fragments the status, tumour copy number, focality and limit of detection
    # come from (call.analyse); the plasma fields above are always all-fragment
    called_on: str = "all"
    size_weighted: dict | None = None  # the size-weighted look's own ERBB2 measurement, when it made the call
    # ERBB2 under the other readings of the profile that fit it as well as the reported one (call.reading_values)
    ploidy_readings: tuple[dict, ...] = ()
