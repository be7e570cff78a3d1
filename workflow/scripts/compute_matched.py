"""Snakemake glue for the compute-matched table and figure (see fwdsnn.tables.compute_matched_table)."""

from fwdsnn import logs
from fwdsnn.artifacts import TABLE_FILES
from fwdsnn.figures import plot_compute_matched
from fwdsnn.tables import compute_matched_table, compute_matched_text, read_histories, write_table

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
runs, inputs, out = snakemake.params.runs, list(snakemake.input), snakemake.output  # noqa: F821
histories = read_histories(runs, inputs)
write_table(compute_matched_table(runs, histories), compute_matched_text, {"nc": out.nc, "csv": out.csv, "md": out.md},
            stage=TABLE_FILES["compute_matched"].stage, config={"runs": list(runs)}, inputs=inputs)
plot_compute_matched(histories, out.png, out.pdf)
