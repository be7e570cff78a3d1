"""Snakemake glue for the aggregate tables (see fwdsnn.tables)."""

from fwdsnn import logs
from fwdsnn.tables import TABLES, tables_run

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
out = snakemake.output  # noqa: F821
tables_run(snakemake.params.runs, list(snakemake.input),  # noqa: F821
           {name: {kind: out[f"{name}_{kind}"] for kind in ("nc", "csv", "md")} for name in TABLES})
