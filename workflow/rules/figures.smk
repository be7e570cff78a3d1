# Stage: figures for the HTML report (results/figures/*.png + .pdf).


rule figure_reference:
    input:
        expand("data/{target}.nc", target=TARGETS),
    output:
        png=report(
            "results/figures/reference.png",
            caption="../report/reference.rst",
            category="Reference data",
        ),
        pdf="results/figures/reference.pdf",
    params:
        targets=TARGETS,
        code=code_fingerprint("fwdsnn.figures"),
    log:
        log_path("figures", "reference"),
    benchmark:
        benchmark_path("figures", "reference")
    script:
        "../scripts/figure_reference.py"


rule figures_all:
    input:
        rules.figure_reference.output,
