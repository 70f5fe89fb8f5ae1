"""The one error type users see.

Library code raises these with a message that names the file, sample or bin and
what to do; only ``her2cnv.cli.main`` prints them (one line, no traceback).
"""


class Her2CnvError(Exception):
    """A failure caused by the inputs or the environment, not by a bug (exit status 1)."""

    exit_status = 1


class InputError(Her2CnvError):
    """Bad input or usage: a file that is missing, malformed or incompatible (exit status 2)."""

    exit_status = 2
