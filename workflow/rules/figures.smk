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
    log:
        log_path("figures", "reference"),
    benchmark:
        benchmark_path("figures", "reference")
    params:
        targets=TARGETS,
        code=code_fingerprint("fwdsnn.figures"),
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
    log:
        log_path("figures", "gradient_quality"),
    benchmark:
        benchmark_path("figures", "gradient_quality")
    params:
        names=DIAGNOSED,
        code=code_fingerprint("fwdsnn.figures"),
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
    log:
        log_path("figures", "estimator_cost"),
    benchmark:
        benchmark_path("figures", "estimator_cost")
    params:
        code=code_fingerprint("fwdsnn.figures"),
    script:
        "../scripts/figure_estimator_cost.py"


rule figure_predictions:
    input:
        reference="data/{target}.nc",
        predictions=lambda w: expand(
            "results/runs/{run}/prediction.nc", run=target_runs(w)
        ),
        metrics=lambda w: expand("results/runs/{run}/metrics.nc", run=target_runs(w)),
    output:
        png=report(
            "results/figures/predictions_{target}.png",
            caption="../report/predictions.rst",
            category="Predictions",
        ),
        pdf="results/figures/predictions_{target}.pdf",
    log:
        log_path("figures", "predictions_{target}"),
    benchmark:
        benchmark_path("figures", "predictions_{target}")
    params:
        runs=target_runs,
        training=target_training,
        code=code_fingerprint("fwdsnn.figures"),
    script:
        "../scripts/figure_predictions.py"


rule figure_training:
    input:
        lambda w: expand("results/runs/{run}/history.nc", run=target_runs(w)),
    output:
        png=report(
            "results/figures/training_{target}.png",
            caption="../report/training.rst",
            category="Training curves",
        ),
        pdf="results/figures/training_{target}.pdf",
    log:
        log_path("figures", "training_{target}"),
    benchmark:
        benchmark_path("figures", "training_{target}")
    params:
        runs=target_runs,
        training=target_training,
        code=code_fingerprint("fwdsnn.figures"),
    script:
        "../scripts/figure_training.py"


rule figure_accuracy:
    input:
        "results/tables/accuracy.nc",
    output:
        png=report(
            "results/figures/accuracy.png",
            caption="../report/accuracy.rst",
            category="Accuracy",
        ),
        pdf="results/figures/accuracy.pdf",
    log:
        log_path("figures", "accuracy"),
    benchmark:
        benchmark_path("figures", "accuracy")
    params:
        code=code_fingerprint("fwdsnn.figures"),
    script:
        "../scripts/figure_accuracy.py"


rule figure_energy:
    input:
        "results/tables/energy.nc",
    output:
        energy_png=report(
            "results/figures/energy.png",
            caption="../report/energy.rst",
            category="Activity and energy",
        ),
        energy_pdf="results/figures/energy.pdf",
        rates_png=report(
            "results/figures/spike_rates.png",
            caption="../report/spike_rates.rst",
            category="Activity and energy",
        ),
        rates_pdf="results/figures/spike_rates.pdf",
    log:
        log_path("figures", "energy"),
    benchmark:
        benchmark_path("figures", "energy")
    params:
        code=code_fingerprint("fwdsnn.figures"),
    script:
        "../scripts/figure_energy.py"


rule figures_all:
    input:
        rules.figure_reference.output,
        rules.figure_gradient_quality.output,
        rules.figure_estimator_cost.output,
        expand(
            "results/figures/{kind}_{target}.{ext}",
            kind=["predictions", "training"],
            target=EXPERIMENT_TARGETS,
            ext=["png", "pdf"],
        ),
        rules.figure_accuracy.output,
        rules.figure_energy.output,
        rules.compute_matched.output,
