"""A study of non-spiking runs only: the hardware stage has no per-run jobs, and the bit sweep
still completes, with a table of zero rows and a figure that says why."""

from fwdsnn import io
from conftest import QUICK, copy_workflow, planned_outputs, snakemake

ANN_ONLY = "experiments:\n  - {target: parabola, model: mlp, methods: [ann]}\n"


def test_the_hardware_stage_has_nothing_to_do_and_says_so(tmp_path):
    workdir = copy_workflow(tmp_path)
    (workdir / "ann_only.yaml").write_text(ANN_ONLY)
    proc = snakemake(workdir, "-c1", "hardware_all", "--configfile", "config.yaml", QUICK, "ann_only.yaml")
    tables, figures = workdir / "results" / "tables", workdir / "results" / "figures"
    assert planned_outputs(proc) == ["results/figures/bit_sweep.pdf", "results/figures/bit_sweep.png",
                                     "results/tables/bit_sweep.csv", "results/tables/bit_sweep.md",
                                     "results/tables/bit_sweep.nc"]  # no training, no hardware job
    assert len((tables / "bit_sweep.md").read_text().splitlines()) == 2  # header and rule
    assert io.read_dataset(tables / "bit_sweep.nc", stage="bit_sweep").sizes["method"] == 0
    assert (figures / "bit_sweep.png").stat().st_size > 1_000
