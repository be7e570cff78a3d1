"""Snakemake glue for the predictions-vs-reference figure of one target (see fwdsnn.figures)."""

from fwdsnn import io, logs
from fwdsnn.artifacts import METRICS, PREDICTION, REFERENCE, parse_run
from fwdsnn.figures import plot_predictions

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
inputs, runs = snakemake.input, snakemake.params.runs  # noqa: F821
predictions, metrics = {}, {}
for run, prediction, metric in zip(runs, inputs.predictions, inputs.metrics):
    run = parse_run(run)
    key = (run.model, run.method)
    predictions.setdefault(key, {})[run.seed] = io.read_artifact(prediction, PREDICTION)
    metrics.setdefault(key, {})[run.seed] = io.read_artifact(metric, METRICS)
reference = io.read_artifact(inputs.reference, REFERENCE)
plot_predictions(reference, predictions, metrics, snakemake.output.png, snakemake.output.pdf,  # noqa: F821
                 title=snakemake.wildcards.target)  # noqa: F821
