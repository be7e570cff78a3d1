# fwdsnn: spiking neural networks trained without back-propagation, as a reproducible study.
# Run everything:   snakemake -c all          Quick check:  see workflow/configs/quick.yaml
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/hardware.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        rules.reference_all.input,
        rules.train_all.input,
        rules.diagnostics_all.input,
        rules.bench_all.input,
        rules.hardware_all.input,
        rules.metrics_all.input,
        rules.tables_all.input,
        rules.figures_all.input,
