"""Builds the one compiled module, her2cnv._counts; all metadata lives in pyproject.toml."""
import os

import pysam
from Cython.Build import cythonize
from setuptools import Extension, setup

# The loop calls htslib's sam_read1 itself, from pysam's copy of htslib. It is linked by file name, as
# pysam's own extensions are, so at import it resolves to the copy pysam has loaded (her2cnv.counts
# imports pysam first).
htslib = next(path for path in pysam.get_libraries() if os.path.basename(path).startswith("libchtslib"))
counts_extension = Extension(
    "her2cnv._counts",
    sources=["cext/_counts.pyx"],
    include_dirs=pysam.get_include(),
    define_macros=pysam.get_defines()
    + [("HER2CNV_PYSAM_VERSION", '"%s"' % pysam.__version__)],
    library_dirs=[os.path.dirname(htslib)],
    libraries=[":" + os.path.basename(htslib)],
    extra_compile_args=["-O3"],
)

setup(ext_modules=cythonize([counts_extension], language_level=3))
