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


rule figure_gradient_quality:
    input:
        expand("results/diagnostics/{run}/gradient_quality.nc", run=DIAGNOSED),
    output:
        png=report(
            "results/figures/gradient_quality.png",
            caption="../report/gradient_quality.rst",
            category="Gradient estimators",
        ),
        pdf="results/figures/gradient_quality.pdf",
    params:
        names=DIAGNOSED,
        code=code_fingerprint("fwdsnn.figures"),
    log:
        log_path("figures", "gradient_quality"),
    benchmark:
        benchmark_path("figures", "gradient_quality")
    script:
        "../scripts/figure_gradient_quality.py"


rule figure_estimator_cost:
    input:
        rules.bench.output,
    output:
        png=report(
            "results/figures/estimator_cost.png",
            caption="../report/estimator_cost.rst",
            category="Gradient estimators",
        ),
        pdf="results/figures/estimator_cost.pdf",
    params:
        code=code_fingerprint("fwdsnn.figures"),
    log:
        log_path("figures", "estimator_cost"),
    benchmark:
        benchmark_path("figures", "estimator_cost")
    script:
        "../scripts/figure_estimator_cost.py"


rule figures_all:
    input:
        rules.figure_reference.output,
        rules.figure_gradient_quality.output,
        rules.figure_estimator_cost.output,
