"""Snakemake glue for the step-time benchmark of the study's training steps (see fwdsnn.step_time)."""

from pathlib import Path

from fwdsnn import io, logs
from fwdsnn.artifacts import STEP_TIME
from fwdsnn.registry import estimator_class
from fwdsnn.step_time import step_time

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
references = {Path(path).stem: path for path in snakemake.input}  # noqa: F821
params = snakemake.params  # noqa: F821
estimators = {name: estimator_class(name) for name in params.estimators}
io.write_dataset(step_time(params.runs, references, params.repeats, estimators),
                 snakemake.output[0], stage=STEP_TIME.stage,  # noqa: F821
                 config={"runs": params.runs, "repeats": params.repeats}, seed=0)
