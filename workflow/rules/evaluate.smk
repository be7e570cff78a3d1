# Stage 3: gradient diagnostics per (target, model) and the estimator cost benchmark.


rule gradient_quality:
    input:
        "data/{target}.nc",
    output:
        "results/diagnostics/{target}/{model}/gradient_quality.nc",
    params:
        model=lambda w: config["models"][w.model],
        settings=config["diagnostics"],
        code=code_fingerprint("fwdsnn.diagnostics", estimator_module("forward")),
    log:
        log_path("diagnostics", "{target}/{model}"),
    benchmark:
        benchmark_path("diagnostics", "{target}/{model}")
    script:
        "../scripts/gradient_quality.py"


rule bench:
    output:
        "results/bench/estimators.nc",
    params:
        settings=config["bench"],
        code=code_fingerprint("fwdsnn.bench", *(module for module, _ in ESTIMATORS.values())),
    log:
        log_path("bench", "estimators"),
    benchmark:
        benchmark_path("bench", "estimators")
    threads: 256  # Snakemake scales this down to --cores: nothing runs beside the benchmark
    script:
        "../scripts/bench.py"


rule diagnostics_all:
    input:
        expand("results/diagnostics/{run}/gradient_quality.nc", run=DIAGNOSED),


rule bench_all:
    input:
        rules.bench.output,
