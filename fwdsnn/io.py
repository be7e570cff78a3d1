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
# A variable whose value depends on the machine and its load (a timing, a memory peak, or a
# ratio of them) says so in this attribute; equality checks skip exactly the marked variables.
MEASUREMENT_ATTR = "measurement"
MEASUREMENT_KINDS = ("timing", "memory")
# units that only a measurement has: a variable in them must carry the mark
MEASURED_UNITS = {"s": "timing", "ms": "timing", "MB": "memory", "MiB": "memory"}


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


def measured(attrs: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """``attrs`` with the mark of a measurement of ``kind`` (timing or memory)."""
    if kind not in MEASUREMENT_KINDS:
        raise ValueError(f"measurement kind {kind!r} is not one of {', '.join(MEASUREMENT_KINDS)}")
    return {**attrs, MEASUREMENT_ATTR: kind}


def measurement_variables(ds: xr.Dataset) -> dict[str, str]:
    """Name -> kind of every variable (data or coordinate) marked as a measurement."""
    return {str(name): var.attrs[MEASUREMENT_ATTR] for name, var in ds.variables.items()
            if MEASUREMENT_ATTR in var.attrs}


def without_measurements(ds: xr.Dataset) -> xr.Dataset:
    """ds without its marked measurements: what must be equal between two runs of the same work."""
    return ds.drop_vars(list(measurement_variables(ds)))


def _check_measurement_mark(name: str, attrs: Mapping[str, Any]) -> None:
    kind = attrs.get(MEASUREMENT_ATTR)
    if kind is not None and kind not in MEASUREMENT_KINDS:
        raise DatasetError(f"variable {name!r}: {MEASUREMENT_ATTR}={kind!r} is not one of "
                           f"{', '.join(MEASUREMENT_KINDS)}")
    if kind is None and attrs.get("units") in MEASURED_UNITS:
        raise DatasetError(f"variable {name!r} in {attrs['units']!r} is a measurement: mark it with "
                           f"io.measured(attrs, {MEASURED_UNITS[attrs['units']]!r}) so equality checks "
                           "skip it")


def check_variable_attrs(ds: xr.Dataset) -> None:
    """Every data variable and coordinate must say what it is, in which units, and whether it is
    a measurement (see MEASUREMENT_ATTR)."""
    for name, var in {**ds.data_vars, **ds.coords}.items():
        missing = [key for key in ("long_name", "units") if key not in var.attrs]
        if missing:
            raise DatasetError(f"variable {name!r} lacks attribute(s) {', '.join(missing)}")
        _check_measurement_mark(str(name), var.attrs)
        if np.issubdtype(var.dtype, np.integer) and {"scale_factor", "add_offset"} & set(var.attrs):
            raise DatasetError(f"integer variable {name!r} must not carry scale_factor/add_offset "
                               "(xarray would decode it to float); store the scale separately")


def source(ds: xr.Dataset) -> str:
    """The file a dataset was read from (xarray keeps it in the encoding), for error messages."""
    return str(ds.encoding.get("source", "dataset (not read from a file)"))


def require_attrs(ds: xr.Dataset, names: Iterable[str]) -> None:
    """Fail naming the file and the global attributes a reading stage needs but lacks."""
    missing = [name for name in names if name not in ds.attrs]
    if missing:
        raise DatasetError(f"{source(ds)}: missing attribute(s) {', '.join(missing)}")


def json_attr(ds: xr.Dataset, name: str) -> Any:
    """A global attribute holding JSON (settings, shapes), decoded; fails naming file and attribute."""
    require_attrs(ds, (name,))
    try:
        return json.loads(ds.attrs[name])
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{source(ds)}: attribute {name!r} is not valid JSON ({err})") from None


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


def read_artifact(path: str | os.PathLike, kind) -> xr.Dataset:
    """A file of an ``fwdsnn.artifacts`` kind: its stage and required variables checked."""
    return read_dataset(path, stage=kind.stage, variables=kind.variables)


def data_variables_equal(a: xr.Dataset, b: xr.Dataset) -> bool:
    """True when two datasets hold bit-identical data variables and coordinates, attributes and
    marked measurements ignored."""
    return _comparable(a).identical(_comparable(b))


def _comparable(ds: xr.Dataset) -> xr.Dataset:
    """What two runs of the same work must share: ds without attributes and measurements."""
    return without_measurements(ds).drop_attrs()


def differing_variables(a: xr.Dataset, b: xr.Dataset) -> list[str]:
    """Names of the unmarked variables that are missing from one dataset or differ in value,
    dims or dtype; empty when :func:`data_variables_equal` holds for the variables."""
    a, b = _comparable(a), _comparable(b)
    names = sorted(set(map(str, a.variables)) | set(map(str, b.variables)))
    return [name for name in names
            if name not in a.variables or name not in b.variables
            or not a[name].variable.identical(b[name].variable)]
