"""Snakemake glue for the convergence table (see fwdsnn.tables.convergence_table)."""

from fwdsnn import logs
from fwdsnn.artifacts import TABLE_FILES
from fwdsnn.tables import convergence_table, convergence_text, read_histories, write_table

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
runs, inputs, out = snakemake.params.runs, list(snakemake.input), snakemake.output  # noqa: F821
write_table(convergence_table(runs, read_histories(runs, inputs)), convergence_text,
            {"nc": out.nc, "csv": out.csv, "md": out.md},
            stage=TABLE_FILES["convergence"].stage, config={"runs": list(runs)}, inputs=inputs)
