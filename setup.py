"""Builds the one compiled module, her2cnv._counts; all metadata lives in pyproject.toml."""
import pysam
from Cython.Build import cythonize
from setuptools import Extension, setup

counts_extension = Extension(
    "her2cnv._counts",
    sources=["cext/_counts.pyx"],
    include_dirs=pysam.get_include(),
    define_macros=pysam.get_defines()
    + [("HER2CNV_PYSAM_VERSION", '"%s"' % pysam.__version__)],
    extra_compile_args=["-O3"],
)

setup(ext_modules=cythonize([counts_extension], language_level=3))
