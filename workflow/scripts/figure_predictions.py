"""Snakemake glue for the predictions-vs-reference figure of one target (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.figures import plot_predictions

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
inputs, runs = snakemake.input, snakemake.params.runs  # noqa: F821
predictions, metrics = {}, {}
for run, prediction, metric in zip(runs, inputs.predictions, inputs.metrics):
    _, model, method, seed = run.split("/")
    key = (model, method)
    predictions.setdefault(key, {})[int(seed[1:])] = io.read_dataset(prediction, stage="train", variables=("u_pred",))
    metrics.setdefault(key, {})[int(seed[1:])] = io.read_dataset(metric, stage="metrics", variables=("rel_l2_mean",))
reference = io.read_dataset(inputs.reference, stage="reference", variables=("u", "split"))
plot_predictions(reference, predictions, metrics, snakemake.output.png, snakemake.output.pdf,  # noqa: F821
                 title=snakemake.wildcards.target)  # noqa: F821
