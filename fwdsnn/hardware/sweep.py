"""The bit sweep: emulated test error against weight bits, next to the float network's.

One table over every converted run, dims experiment (target/model) x method x seed x bits, so
a reader sees per run what fixed point costs and, as medians over seeds, which weight width is
enough. A diverged run has no network to convert: its entries are NaN and its status says so.
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from fwdsnn import io
from fwdsnn.hardware.format import STAGE as HARDWARE_STAGE


def _mean_rel_l2(path: str | Path) -> float:
    """Test rel-L2, mean over test functions (the study's metric), of an emulated prediction."""
    return float(np.mean(io.read_dataset(path, stage=HARDWARE_STAGE, variables=("rel_l2",))["rel_l2"]))


def bit_sweep(runs: list[str], bits: list[int], metrics: Mapping[str, xr.Dataset],
              emulated: Mapping[tuple[str, int], str]) -> xr.Dataset:
    """runs are 'target/model/method/sSEED'; metrics[run] the run's metrics.nc (float error
    and training status, computed once there), emulated[(run, bits)] the emulator's output."""
    parts = [run.split("/") for run in runs]
    experiments = sorted({f"{t}/{m}" for t, m, _, _ in parts})
    methods = sorted({method for _, _, method, _ in parts})
    seeds = sorted({int(seed[1:]) for _, _, _, seed in parts})
    shape = (len(experiments), len(methods), len(seeds))
    float_err, emul_err = np.full(shape, np.nan), np.full((*shape, len(bits)), np.nan)
    status = np.full(shape, "not run", dtype=object)
    for run, (target, model, method, seed) in zip(runs, parts):
        at = (experiments.index(f"{target}/{model}"), methods.index(method), seeds.index(int(seed[1:])))
        status[at] = metrics[run].attrs["status"]
        if status[at] != "completed":
            continue
        float_err[at] = float(metrics[run]["rel_l2_mean"])
        for k, b in enumerate(bits):
            emul_err[(*at, k)] = _mean_rel_l2(emulated[(run, b)])
    dims = ("experiment", "method", "seed")
    ratio = emul_err / float_err[..., None]
    return xr.Dataset(
        {"emulated_rel_l2": ((*dims, "bits"), emul_err,
                             {"long_name": "emulated test relative L2 error", "units": "1"}),
         "float_rel_l2": (dims, float_err, {"long_name": "float SNN test relative L2 error", "units": "1"}),
         "ratio_to_float": ((*dims, "bits"), ratio,
                            {"long_name": "emulated / float test relative L2 error", "units": "1"}),
         "status": (dims, status.astype(str), {"long_name": "training status of the run", "units": "1"})},
        coords={"experiment": ("experiment", experiments, {"long_name": "target/model", "units": "1"}),
                "method": ("method", methods, {"long_name": "training method", "units": "1"}),
                "seed": ("seed", seeds, {"long_name": "training seed", "units": "1"}),
                "bits": ("bits", list(bits), {"long_name": "weight mantissa bits", "units": "bit"})})


def median_table(ds: xr.Dataset) -> list[dict]:
    """Rows (experiment, method) with the float error and the emulated error per bit width,
    medians over seeds (NaN-aware: a diverged seed does not hide the others)."""
    rows = []
    for experiment in ds["experiment"].values:
        for method in ds["method"].values:
            cell = ds.sel({"experiment": experiment, "method": method})  # not method=: a .sel keyword
            if (cell["status"] == "not run").all():
                continue
            row = {"experiment": str(experiment), "method": str(method),
                   "diverged": int((cell["status"] == "diverged").sum()),
                   "float": float(cell["float_rel_l2"].median(skipna=True))}
            for b in ds["bits"].values:
                row[f"w{b}"] = float(cell["emulated_rel_l2"].sel(bits=b).median(skipna=True))
            rows.append(row)
    return rows


def write_tables(rows: list[dict], csv_path: str | Path, markdown_path: str | Path) -> None:
    """The median table as CSV (machines) and Markdown (the report and the README)."""
    header = list(rows[0])
    fmt = {key: (lambda v: f"{v:.4f}") if key == "float" or key.startswith("w") else str
           for key in header}
    lines = [",".join(header)] + [",".join(fmt[k](row[k]) for k in header) for row in rows]
    io.write_text(csv_path, "\n".join(lines) + "\n")
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(fmt[k](row[k]) for k in header) + " |" for row in rows]
    io.write_text(markdown_path, "\n".join(md) + "\n")
