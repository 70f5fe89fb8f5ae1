"""her2cnv: ctDNA copy-number calling for ERBB2 (HER2) amplification.

Stages, one module each, in the order data flows: ``bins`` (where to count),
``counts`` (fragments per bin, via the compiled loop), ``pon`` and ``normalize``
(panel of normals, copy ratios), ``segment``, ``purity`` (tumour fraction),
``call`` (the ERBB2 answer), ``monitor`` (change over time) and ``report``
(HTML). ``io`` reads and writes every file; ``cli`` is a thin layer on top;
``simulate`` makes data with a known truth.
"""
import importlib

from .version import __version__

# The public names and the stage module of each. They are imported on first use (PEP 562), so that
# 'her2cnv count' loads only what counting needs, not the caller, the plots' helpers and the rest
# (~20 ms of a 3.7 s single-threaded count, where the target leaves 5% over decompression).
_PUBLIC = {
    "detect_assembly": "bins", "genome_layout": "bins", "make_bins": "bins", "target_layout": "bins",
    "analyse": "call", "call_erbb2": "call", "classify": "call",
    "CountFilters": "counts", "count_bam": "counts",
    "Her2CnvError": "errors", "InputError": "errors",
    "track_patient": "monitor", "log2_ratios": "normalize", "build_panel": "pon",
    "fit_tumor_fraction": "purity", "render_patient_report": "report", "render_sample_report": "report",
    "segment_profile": "segment",
    "Assembly": "types", "Bins": "types", "Erbb2Call": "types", "FragmentCounts": "types", "Panel": "types",
    "Profile": "types", "Segments": "types", "Thresholds": "types",
}


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = sorted([*_PUBLIC, "__version__"])
