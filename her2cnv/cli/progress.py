"""A terminal progress bar for the long steps (count, pon, simulate); quiet in logs."""
import sys


class ProgressBar:
    """A one-line progress bar on a terminal; silent when stderr is not a TTY or with --quiet."""

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled, self.shown = label, enabled, -1

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if self.enabled and percent != self.shown:
            self.shown = percent
            filled = percent // 4
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (25 - filled)}] {percent:3d}%")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.shown >= 0:
            sys.stderr.write("\n")


def progress_bar(args, label: str) -> ProgressBar:
    return ProgressBar(label, enabled=sys.stderr.isatty() and not args.quiet)
