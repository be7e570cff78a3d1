# Stage 3: gradient diagnostics per (target, model) and the estimator cost benchmark.


rule gradient_quality:
    input:
        "data/{target}.nc",
    output:
        "results/diagnostics/{target}/{model}/gradient_quality.nc",
    log:
        log_path("diagnostics", "{target}/{model}"),
    benchmark:
        benchmark_path("diagnostics", "{target}/{model}")
    params:
        model=lambda w: config["models"][w.model],
        methods=diagnosed,
        settings=config["diagnostics"],
        code=diagnostics_code,
    script:
        "../scripts/gradient_quality.py"


rule bench:
    output:
        "results/bench/estimators.nc",
    log:
        log_path("bench", "estimators"),
    benchmark:
        benchmark_path("bench", "estimators")
    threads: 256  # Snakemake scales this down to --cores: nothing runs beside the benchmark
    params:
        settings=config["bench"],
        code=code_fingerprint("fwdsnn.bench"),
    script:
        "../scripts/bench.py"


# the first experiment of each model is the one whose training step is timed, for every
# method of it and bp's BPTT through Norse's modules (fwdsnn.config.step_time_runs)
STEP_TIME_RUNS = step_time_runs(config)
STEP_TIME_ESTIMATORS = sorted(
    {
        method["estimator"]
        for run in STEP_TIME_RUNS.values()
        for method, _ in run["methods"].values()
    }
)


rule step_time:
    input:
        sorted({f"data/{run['target']}.nc" for run in STEP_TIME_RUNS.values()}),
    output:
        "results/bench/step_time.nc",
    log:
        log_path("bench", "step_time"),
    benchmark:
        benchmark_path("bench", "step_time")
    threads: 256  # as for bench: nothing runs beside the timing
    params:
        runs=STEP_TIME_RUNS,
        repeats=config["bench"]["step_time_repeats"],
        estimators=STEP_TIME_ESTIMATORS,
        code=code_fingerprint(
            "fwdsnn.step_time",
            *(estimator_module(name) for name in STEP_TIME_ESTIMATORS),
        ),
    script:
        "../scripts/step_time.py"


rule diagnostics_all:
    input:
        expand("results/diagnostics/{run}/gradient_quality.nc", run=DIAGNOSED),


rule bench_all:
    input:
        rules.bench.output,
        rules.step_time.output,


# Metrics per run and the aggregate tables over the study.


rule metrics:
    input:
        history=f"results/runs/{RUN_DIR}/history.nc",
        prediction=f"results/runs/{RUN_DIR}/prediction.nc",
        energy=energy_input,
    output:
        f"results/runs/{RUN_DIR}/metrics.nc",
    log:
        log_path("metrics", RUN_DIR),
    benchmark:
        benchmark_path("metrics", RUN_DIR)
    params:
        # read if present, not an input: peak memory of the training job (absent for runs
        # made outside Snakemake); a retrained run rewrites history.nc, which reruns this
        train_benchmark=lambda w: benchmark_path("train", RUN_DIR.format(**w)),
        code=code_fingerprint("fwdsnn.metrics"),
    script:
        "../scripts/metrics.py"


TABLES = ["accuracy", "cost", "energy"]
TABLE_CATEGORIES = {
    "accuracy": "Accuracy",
    "cost": "Training cost",
    "energy": "Activity and energy",
}


rule tables:
    input:
        expand("results/runs/{run}/metrics.nc", run=RUNS),
    output:
        **{f"{name}_nc": f"results/tables/{name}.nc" for name in TABLES},
        **{f"{name}_csv": f"results/tables/{name}.csv" for name in TABLES},
        **{
            f"{name}_md": report(
                f"results/tables/{name}.md",
                caption=f"../report/{name}_table.rst",
                category=TABLE_CATEGORIES[name],
            )
            for name in TABLES
        },
    log:
        log_path("tables", "tables"),
    benchmark:
        benchmark_path("tables", "tables")
    params:
        runs=RUNS,
        code=code_fingerprint("fwdsnn.tables"),
    script:
        "../scripts/tables.py"


# the test error at equal steps and at bp's wall time, from the training histories: a table
# and its figure in one job (both read every history.nc)
rule compute_matched:
    input:
        expand("results/runs/{run}/history.nc", run=RUNS),
    output:
        nc="results/tables/compute_matched.nc",
        csv="results/tables/compute_matched.csv",
        md=report(
            "results/tables/compute_matched.md",
            caption="../report/compute_matched_table.rst",
            category="Training cost",
        ),
        png=report(
            "results/figures/compute_matched.png",
            caption="../report/compute_matched.rst",
            category="Training cost",
        ),
        pdf="results/figures/compute_matched.pdf",
    log:
        log_path("tables", "compute_matched"),
    benchmark:
        benchmark_path("tables", "compute_matched")
    params:
        runs=RUNS,
        code=code_fingerprint("fwdsnn.tables", "fwdsnn.figures"),
    script:
        "../scripts/compute_matched.py"


# how much the last fifth of each run's steps still lowered its test error (is the budget enough?)
rule convergence:
    input:
        expand("results/runs/{run}/history.nc", run=RUNS),
    output:
        nc="results/tables/convergence.nc",
        csv="results/tables/convergence.csv",
        md=report(
            "results/tables/convergence.md",
            caption="../report/convergence_table.rst",
            category="Accuracy",
        ),
    log:
        log_path("tables", "convergence"),
    benchmark:
        benchmark_path("tables", "convergence")
    params:
        runs=RUNS,
        code=code_fingerprint("fwdsnn.tables"),
    script:
        "../scripts/convergence.py"


rule metrics_all:
    input:
        expand("results/runs/{run}/metrics.nc", run=RUNS),


rule tables_all:
    input:
        rules.tables.output,
        rules.compute_matched.output,
        rules.convergence.output,
