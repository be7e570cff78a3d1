"""NetCDF conventions: atomic writes, provenance, checks on write and on read."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fwdsnn import io


def sample_dataset(values=(1.0, 2.0, 3.0)):
    x = xr.DataArray(np.linspace(0, 1, len(values)), dims="x",
                     attrs={"long_name": "position", "units": "m"})
    return xr.Dataset({"u": ("x", np.asarray(values), {"long_name": "u", "units": "1"})},
                      coords={"x": x})


def test_round_trip_with_provenance(tmp_path):
    source = tmp_path / "in.nc"
    io.write_dataset(sample_dataset(), source, stage="reference", config={"a": 1})
    out = io.write_dataset(sample_dataset([4.0, 5.0, 6.0]), tmp_path / "sub" / "out.nc",
                           stage="train", config={"lr": 0.1}, seed=7, inputs=[source])
    ds = io.read_dataset(out, stage="train", variables=["u"])
    np.testing.assert_array_equal(ds["u"].values, [4.0, 5.0, 6.0])
    assert ds.attrs["seed"] == 7 and json.loads(ds.attrs["config_json"]) == {"lr": 0.1}
    assert json.loads(ds.attrs["inputs_sha256"]) == {source.as_posix(): io.sha256_file(source)}
    assert set(io.PROVENANCE_KEYS) <= set(ds.attrs)
    assert ds.attrs["git_commit"]
    with xr.open_dataset(out) as raw:
        assert raw["u"].encoding.get("zlib") is True


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "f.nc"
    io.write_dataset(sample_dataset(), target, stage="s", config={})
    original = target.read_bytes()

    def explode(self, path, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half a file")
        raise KeyboardInterrupt  # a job killed mid-write

    monkeypatch.setattr(xr.Dataset, "to_netcdf", explode)
    with pytest.raises(KeyboardInterrupt):
        io.write_dataset(sample_dataset([9.0, 9.0, 9.0]), target, stage="s", config={})
    assert target.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.nc"]


KILLED_WRITER = """
import os, signal, sys
import xarray as xr
sys.path.insert(0, {tests!r})
from fwdsnn import io
from test_io import sample_dataset

def killed(self, path, **kwargs):
    with open(path, "wb") as handle:
        handle.write(b"half a file")
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup runs

xr.Dataset.to_netcdf = killed
io.write_dataset(sample_dataset(), {target!r}, stage="s", config={{}})
"""


def test_the_next_write_removes_what_a_killed_writer_left(tmp_path):
    target = tmp_path / "f.nc"
    script = KILLED_WRITER.format(tests=str(Path(__file__).parent), target=str(target))
    assert subprocess.run([sys.executable, "-c", script]).returncode == -signal.SIGKILL
    orphans = [p.name for p in tmp_path.iterdir()]
    assert len(orphans) == 1 and orphans[0].startswith(".f.nc.") and orphans[0].endswith(".tmp")
    # temporaries of other files, even of names that start like this one, are not ours to remove
    others = [".f.nc.x.nc.abcd1234.tmp", ".g.nc.abcd1234.tmp", ".f.nc.abc.tmp"]
    for name in others:
        (tmp_path / name).write_bytes(b"another writer's")
    io.write_dataset(sample_dataset(), target, stage="s", config={})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["f.nc", *others])


def test_write_refuses_variables_without_units(tmp_path):
    ds = sample_dataset()
    del ds["u"].attrs["units"]
    with pytest.raises(io.DatasetError, match="'u' lacks attribute.*units"):
        io.write_dataset(ds, tmp_path / "f.nc", stage="s", config={})
    assert not (tmp_path / "f.nc").exists()


def test_write_refuses_scaled_integers(tmp_path):
    ds = sample_dataset()
    ds["w"] = xr.DataArray(np.array([1, 2, 3], np.int16), dims="x",
                           attrs={"long_name": "weights", "units": "1", "scale_factor": 0.5})
    with pytest.raises(io.DatasetError, match="integer variable 'w'"):
        io.write_dataset(ds, tmp_path / "f.nc", stage="s", config={})


def test_read_names_the_file_and_what_is_missing(tmp_path):
    path = io.write_dataset(sample_dataset(), tmp_path / "f.nc", stage="reference", config={})
    with pytest.raises(io.DatasetError, match=r"f\.nc: missing variable\(s\) a, split"):
        io.read_dataset(path, variables=["u", "a", "split"])
    with pytest.raises(io.DatasetError, match=r"f\.nc: expected a file of stage 'train'"):
        io.read_dataset(path, stage="train")
    with pytest.raises(io.DatasetError, match="nope.nc: file not found"):
        io.read_dataset(tmp_path / "nope.nc")
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(io.DatasetError, match="junk.nc: not a readable NetCDF file"):
        io.read_dataset(tmp_path / "junk.nc")


def test_data_variables_equal_ignores_attributes_only():
    a, b = sample_dataset(), sample_dataset()
    b.attrs["created"] = "later"
    assert io.data_variables_equal(a, b)
    assert not io.data_variables_equal(a, sample_dataset([1.0, 2.0, 3.0000001]))


def with_timing(values=(1.0, 2.0, 3.0), seconds=(0.1, 0.2, 0.3), mark=True):
    attrs = {"long_name": "wall time", "units": "s"}
    ds = sample_dataset(values)
    ds["wall_time"] = ("x", np.asarray(seconds), io.measured(attrs, "timing") if mark else attrs)
    return ds


def test_marked_measurements_are_excluded_from_equality_by_attribute_not_name():
    a, b = with_timing(), with_timing(seconds=(0.5, 0.6, 0.7))
    assert io.data_variables_equal(a, b) and io.differing_variables(a, b) == []
    assert io.measurement_variables(a) == {"wall_time": "timing"}
    assert "wall_time" not in io.without_measurements(a)
    # the same name without the mark is data: it is compared
    unmarked = with_timing(seconds=(0.5, 0.6, 0.7), mark=False)
    assert not io.data_variables_equal(a, unmarked)
    assert io.differing_variables(a, unmarked) == ["wall_time"]
    # a marked variable of another name is skipped just the same
    c = sample_dataset()
    c["speed"] = ("x", np.ones(3), io.measured({"long_name": "steps / s", "units": "1"}, "timing"))
    assert io.data_variables_equal(sample_dataset(), c)
    assert io.differing_variables(sample_dataset(), sample_dataset([1.0, 2.0, 4.0])) == ["u"]


@pytest.mark.parametrize("units", sorted(io.MEASURED_UNITS))
def test_an_unmarked_timing_or_memory_variable_is_refused_on_write(tmp_path, units):
    ds = sample_dataset()
    ds["peak"] = ("x", np.ones(3), {"long_name": "a measurement", "units": units})
    with pytest.raises(io.DatasetError, match=rf"'peak' in '{units}' is a measurement"):
        io.write_dataset(ds, tmp_path / "m.nc", stage="bench", config={})
    assert not (tmp_path / "m.nc").exists()
    ds["peak"].attrs[io.MEASUREMENT_ATTR] = "guess"
    with pytest.raises(io.DatasetError, match="measurement='guess' is not one of timing, memory"):
        io.write_dataset(ds, tmp_path / "m.nc", stage="bench", config={})
    ds["peak"].attrs[io.MEASUREMENT_ATTR] = io.MEASURED_UNITS[units]
    io.write_dataset(ds, tmp_path / "m.nc", stage="bench", config={})
    assert io.measurement_variables(io.read_dataset(tmp_path / "m.nc")) == {"peak": io.MEASURED_UNITS[units]}
