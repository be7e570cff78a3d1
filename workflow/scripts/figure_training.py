"""Snakemake glue for the training-curves figure of one target (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.artifacts import HISTORY, parse_run
from fwdsnn.figures import plot_training

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
histories = {}
for run, path in zip(snakemake.params.runs, snakemake.input):  # noqa: F821
    key = parse_run(run)
    histories.setdefault((key.model, key.method), {})[key.seed] = io.read_artifact(path, HISTORY)
plot_training(histories, snakemake.output.png, snakemake.output.pdf,  # noqa: F821
              title=snakemake.wildcards.target)  # noqa: F821
