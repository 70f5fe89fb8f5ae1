"""Reference data shipped with her2cnv (gene coordinates, contig lengths, thresholds, panels).

Read only through ``her2cnv.io``; every file name carries its genome build.
"""
