"""Snakemake glue for the training stage (see fwdsnn.train)."""

from fwdsnn import logs
from fwdsnn.registry import estimator_class
from fwdsnn.train import run_training

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
settings = snakemake.params.settings  # noqa: F821
run_training(
    snakemake.input[0],  # noqa: F821
    settings["model"], settings["method"], settings["train"],
    seed=int(snakemake.wildcards.seed),  # noqa: F821
    device=snakemake.params.device,  # noqa: F821
    outputs=dict(snakemake.output.items()),  # noqa: F821
    estimator=estimator_class(settings["method"]["estimator"]),
    threads=snakemake.threads,  # noqa: F821
)
