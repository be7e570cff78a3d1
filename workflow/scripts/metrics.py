"""Snakemake glue for the metrics of one run (see fwdsnn.metrics)."""

from fwdsnn import logs
from fwdsnn.metrics import metrics_run

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
inputs = snakemake.input  # noqa: F821
metrics_run(inputs.history, inputs.prediction, snakemake.output[0],  # noqa: F821
            energy_path=inputs.energy[0] if inputs.energy else None,
            benchmark_path=snakemake.params.train_benchmark)  # noqa: F821
