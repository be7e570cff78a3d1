"""Snakemake glue for fine-tuning in the loop (see fwdsnn.finetune)."""

from fwdsnn import logs
from fwdsnn.finetune import run_finetune
from fwdsnn.registry import estimator_class

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
settings = snakemake.params.settings  # noqa: F821
run_finetune(
    snakemake.input.model,  # noqa: F821
    snakemake.input.reference,  # noqa: F821
    bits=int(snakemake.wildcards.bits),  # noqa: F821
    settings=settings,
    seed=int(snakemake.wildcards.seed),  # noqa: F821
    outputs=dict(snakemake.output.items()),  # noqa: F821
    estimator=estimator_class(settings["method"]["estimator"]),
    threads=snakemake.threads,  # noqa: F821
)
