"""What the files between stages promise: each kind's stage label and required variables, the
run path, the train/test split codes, and the constants that several stages share.

A leaf (no torch, no other fwdsnn module): the writer of a file and every reader of it import
the same contract from here, so the tables, figures and workflow can read any file without
importing the stage that made it.
"""

from typing import NamedTuple


class FileKind(NamedTuple):
    """A kind of file: the `stage` attribute its writer sets, and the variables a reader may
    rely on (a diverged run's placeholder carries them too, as NaN where nothing was made)."""

    stage: str
    variables: tuple[str, ...] = ()


REFERENCE = FileKind("reference", ("u", "split"))
MODEL = FileKind("train", ("norm_offset", "norm_scale", "quantity"))
HISTORY = FileKind("train", ("loss", "wall_time", "forward_passes", "test_rel_l2_mean"))
PREDICTION = FileKind("train", ("u_pred", "rel_l2", "spike_rate", "spike_count"))
CHECKPOINT = FileKind("checkpoint")
FIXED = FileKind("hardware")
EMULATED = FileKind("hardware", ("rel_l2",))
ENERGY = FileKind("energy")
NIR_STAGE = "nir"  # a NIR graph's metadata, not a NetCDF file
METRICS = FileKind("metrics", ("rel_l2_mean",))
DIAGNOSTICS = FileKind("diagnostics", ("cosine",))
BENCH = FileKind("bench", ("step_time", "peak_memory"))
STEP_TIME = FileKind("bench", ("step_time", "norse_to_bp"))
BIT_SWEEP = FileKind("bit_sweep")
TABLE_FILES = {"accuracy": FileKind("table_accuracy", ("rel_l2_mean",)),
               "cost": FileKind("table_cost"),
               "energy": FileKind("table_energy", ("energy_snn", "spike_rate")),
               "compute_matched": FileKind("table_compute_matched",
                                           ("rel_l2_at_equal_steps", "rel_l2_at_bp_wall_time")),
               "convergence": FileKind("table_convergence", ("last_fifth_improvement", "converged"))}
# the tables whose CSV and Markdown print timings: no two runs of the study write them alike
TIMED_TABLES = ("cost", "compute_matched")

# the method every ratio and the compute-matched comparison measure against
BASELINE = "bp"

# the benchmarks' label of bp's BPTT through Norse's modules, timed beside the methods
NORSE_REFERENCE = "bp-norse"

# split(sample) of a reference file
SPLIT_TRAIN, SPLIT_TEST = 0, 1

# the widest weight mantissa Lava's Dense holds: the converter, the emulator and the bit-sweep
# table all turn on it
LAVA_MAX_WEIGHT_BITS = 8

RUN_DIR = "{target}/{model}/{method}/s{seed}"


class Run(NamedTuple):
    """The wildcards of one training run, as its path under results/runs/ spells them."""

    target: str
    model: str
    method: str
    seed: int


def parse_run(run: str) -> Run:
    """The wildcards of a run path made from RUN_DIR; a clear error for anything else."""
    parts = run.split("/")
    if len(parts) != 4 or not parts[3].startswith("s") or not parts[3][1:].isdigit():
        raise ValueError(f"{run!r} is not a run path {RUN_DIR}")
    return Run(*parts[:3], int(parts[3][1:]))


def split_mask(ds, code: int):
    """True for the samples of a reference dataset in split ``code`` (SPLIT_TRAIN, SPLIT_TEST)."""
    return ds["split"].values == code
