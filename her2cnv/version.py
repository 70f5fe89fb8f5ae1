"""The tool version, recorded in every output file's provenance."""
__version__ = "0.1.0"
