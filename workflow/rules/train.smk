# Stage 2: one training run per (target, model, method, seed), results/runs/RUN/*.nc.


rule train:
    input:
        "data/{target}.nc",
    output:
        model="results/runs/{target}/{model}/{method}/s{seed}/model.nc",
        history="results/runs/{target}/{model}/{method}/s{seed}/history.nc",
        prediction="results/runs/{target}/{model}/{method}/s{seed}/prediction.nc",
    log:
        log_path("train", "{target}/{model}/{method}/s{seed}"),
    benchmark:
        benchmark_path("train", "{target}/{model}/{method}/s{seed}")
    threads: config["threads"]
    resources:
        mem_mb=2000,
    params:
        settings=run_settings,
        device=config["device"],
        code=train_code,
    script:
        "../scripts/train.py"


rule train_all:
    input:
        expand(
            "results/runs/{run}/{name}.nc",
            run=RUNS,
            name=["model", "history", "prediction"],
        ),
