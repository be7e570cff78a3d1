"""Snakemake glue for the bit-sweep table and figure (see fwdsnn.tables.bit_sweep_table)."""

from fwdsnn import logs
from fwdsnn.artifacts import BIT_SWEEP
from fwdsnn.figures import plot_bit_sweep
from fwdsnn.tables import bit_sweep_table, bit_sweep_text, read_emulated, read_metrics, write_table

logs.configure(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
runs, bits, inputs = snakemake.params.runs, snakemake.params.bits, snakemake.input  # noqa: F821
tuned = read_emulated(snakemake.params.tuned_runs, snakemake.params.tuned_bits, inputs.tuned)  # noqa: F821
ds = bit_sweep_table(runs, read_metrics(runs, inputs.metrics), read_emulated(runs, bits, inputs.emulated),
                     bits, tuned)
out = snakemake.output  # noqa: F821
write_table(ds, bit_sweep_text, {"nc": out.table, "csv": out.csv, "md": out.markdown}, stage=BIT_SWEEP.stage,
            config={"bits": bits, "runs": list(runs)}, inputs=[*inputs.metrics, *inputs.emulated, *inputs.tuned])
plot_bit_sweep(ds, out.png, out.pdf)
