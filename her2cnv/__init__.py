"""her2cnv: ctDNA copy-number calling for ERBB2 (HER2) amplification.

Stages, one module each: ``bins`` (where to count), ``counts`` (fragments per
bin, via the compiled loop), then normalisation, calling and monitoring.
``io`` reads and writes every file; ``cli`` is a thin layer on top.
"""
from .bins import detect_assembly, genome_layout, make_bins, target_layout
from .counts import CountFilters, count_bam
from .errors import Her2CnvError, InputError
from .types import Assembly, Bins, FragmentCounts
from .version import __version__

__all__ = [
    "Assembly", "Bins", "CountFilters", "FragmentCounts", "Her2CnvError", "InputError", "__version__",
    "count_bam", "detect_assembly", "genome_layout", "make_bins", "target_layout",
]
