"""Snakemake glue for the step-time benchmark of the study's training steps (see fwdsnn.step_time)."""

from pathlib import Path

from fwdsnn import io, logs
from fwdsnn.step_time import step_time

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
references = {Path(path).stem: path for path in snakemake.input}  # noqa: F821
params = snakemake.params  # noqa: F821
io.write_dataset(step_time(params.study, references, params.repeats), snakemake.output[0],  # noqa: F821
                 stage="bench", config={"study": params.study, "repeats": params.repeats}, seed=0)
