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
    sys.excepthook = _log_uncaught


def _log_uncaught(kind, error, traceback) -> None:
    """A stage that fails says why in its own log too, not only on Snakemake's stderr."""
    logging.getLogger("fwdsnn").error("stage failed", exc_info=(kind, error, traceback))
    sys.__excepthook__(kind, error, traceback)
