"""her2cnv: ctDNA copy-number calling for ERBB2 (HER2) amplification.

Stages, one module each, in the order data flows: ``bins`` (where to count),
``counts`` (fragments per bin, via the compiled loop), ``pon`` and ``normalize``
(panel of normals, copy ratios), ``segment``, ``purity`` (tumour fraction),
``call`` (the ERBB2 answer), ``monitor`` (change over time) and ``report``
(HTML). ``io`` reads and writes every file; ``cli`` is a thin layer on top;
``simulate`` makes data with a known truth.
"""
from .bins import detect_assembly, genome_layout, make_bins, target_layout
from .call import analyse, call_erbb2, classify
from .counts import CountFilters, count_bam
from .errors import Her2CnvError, InputError
from .monitor import track_patient
from .normalize import log2_ratios
from .pon import build_panel
from .purity import fit_tumor_fraction
from .report import render_patient_report, render_sample_report
from .segment import segment_profile
from .types import Assembly, Bins, Erbb2Call, FragmentCounts, Panel, Profile, Segments, Thresholds
from .version import __version__

__all__ = [
    "Assembly", "Bins", "CountFilters", "Erbb2Call", "FragmentCounts", "Her2CnvError", "InputError", "Panel",
    "Profile", "Segments", "Thresholds", "__version__", "analyse", "build_panel", "call_erbb2", "classify",
    "count_bam", "detect_assembly", "fit_tumor_fraction", "genome_layout", "log2_ratios", "make_bins",
    "render_patient_report", "render_sample_report", "segment_profile", "target_layout", "track_patient",
]
