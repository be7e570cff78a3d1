"""NetCDF conventions shared by every stage: atomic writes, provenance, validated reads.

Every array that passes between stages goes through :func:`write_dataset` and
:func:`read_dataset`, so a half-written file never appears, every file says where it came
from, and a stage reading the wrong file fails with a message naming the file and what is
missing instead of a KeyError deep inside numpy.
"""

import datetime as _dt
import glob
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fwdsnn import __version__

ENGINE = "netcdf4"
PROVENANCE_KEYS = ("fwdsnn_version", "git_commit", "created", "stage", "config_json", "seed",
                   "inputs_sha256")


class DatasetError(ValueError):
    """A NetCDF file that is not what the reading stage needs."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex digest of a file's bytes, recorded so a result can be traced to its exact inputs."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str:
    """The commit of the fwdsnn checkout (with '-dirty' for local edits), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fwdsnn"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def provenance(stage: str, config: Mapping[str, Any], seed: int | None = None,
               inputs: Iterable[str | os.PathLike] = ()) -> dict[str, str | int]:
    """Global attributes that say which code, settings and input files made a dataset."""
    attrs: dict[str, str | int] = {
        "fwdsnn_version": __version__,
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "stage": stage,
        "config_json": json.dumps(config, sort_keys=True),
        "seed": -1 if seed is None else int(seed),
    }
    # NetCDF attribute names cannot hold paths: the input digests are one JSON mapping
    attrs["inputs_sha256"] = json.dumps({Path(p).as_posix(): sha256_file(p) for p in inputs},
                                        sort_keys=True)
    return attrs


def check_variable_attrs(ds: xr.Dataset) -> None:
    """Every data variable and coordinate must say what it is and in which units."""
    for name, var in {**ds.data_vars, **ds.coords}.items():
        missing = [key for key in ("long_name", "units") if key not in var.attrs]
        if missing:
            raise DatasetError(f"variable {name!r} lacks attribute(s) {', '.join(missing)}")
        if np.issubdtype(var.dtype, np.integer) and {"scale_factor", "add_offset"} & set(var.attrs):
            raise DatasetError(f"integer variable {name!r} must not carry scale_factor/add_offset "
                               "(xarray would decode it to float); store the scale separately")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_orphan_temporaries(path: Path) -> None:
    """Delete the temporary files a killed writer of ``path`` left beside it: atomic_path's own
    names only (mkstemp's eight random characters), never another file's."""
    own = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if own.fullmatch(candidate.name) and candidate.is_file():
            candidate.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends
    without error, removed otherwise, so a killed job never leaves a half-written result (and
    what a SIGKILL did leave is removed by the next write of the same file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphan_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, *, stage: str,
                  config: Mapping[str, Any], seed: int | None = None,
                  inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ds with provenance and zlib compression, atomically."""
    check_variable_attrs(ds)
    ds = ds.copy()
    ds.attrs.update(provenance(stage, config, seed, inputs))
    encoding = {name: {"zlib": True, "complevel": 4} for name in ds.data_vars}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE, encoding=encoding)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """A text result (CSV, Markdown table), written atomically like the datasets."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def read_dataset(path: str | os.PathLike, *, stage: str | None = None,
                 variables: Iterable[str] = ()) -> xr.Dataset:
    """Open a file fully into memory, checking its stage and required variables."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: file not found")
    try:
        with xr.open_dataset(path, engine=ENGINE) as handle:
            ds = handle.load()
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: not a readable NetCDF file ({err})") from err
    if stage is not None and ds.attrs.get("stage") != stage:
        raise DatasetError(f"{path}: expected a file of stage {stage!r}, "
                           f"found stage {ds.attrs.get('stage')!r}")
    missing = [name for name in variables if name not in ds.variables]
    if missing:
        raise DatasetError(f"{path}: missing variable(s) {', '.join(missing)}")
    return ds


def data_variables_equal(a: xr.Dataset, b: xr.Dataset) -> bool:
    """True when two datasets hold bit-identical data variables and coordinates (attrs ignored)."""
    return a.drop_attrs().identical(b.drop_attrs())
