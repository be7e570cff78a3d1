"""Snakemake glue for the estimator cost benchmark (see fwdsnn.bench)."""

from fwdsnn import io, logs
from fwdsnn.artifacts import BENCH
from fwdsnn.bench import benchmark

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
settings = snakemake.params.settings  # noqa: F821
io.write_dataset(benchmark(settings), snakemake.output[0], stage=BENCH.stage,  # noqa: F821
                 config=settings, seed=0)
