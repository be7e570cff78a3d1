"""Logging for stage jobs: one timestamped line per event in the rule's log file."""

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_path: str | None = None, level: int = logging.INFO) -> None:
    """Send fwdsnn's log records to log_path (a Snakemake `log:` file) or to stderr."""
    handler = logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("fwdsnn")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False  # a library's basicConfig must not print our records twice
