"""Snakemake glue for the training-curves figure of one target (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.figures import plot_training

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
histories = {}
for run, path in zip(snakemake.params.runs, snakemake.input):  # noqa: F821
    _, model, method, seed = run.split("/")
    histories.setdefault((model, method), {})[int(seed[1:])] = io.read_dataset(
        path, stage="train", variables=("loss", "wall_time", "test_rel_l2_mean"))
plot_training(histories, snakemake.output.png, snakemake.output.pdf,  # noqa: F821
              title=snakemake.wildcards.target)  # noqa: F821
