# Stage 2: one training run per (target, model, method, seed), results/runs/RUN/*.nc.


rule train:
    input:
        "data/{target}.nc",
    output:
        model=f"results/runs/{RUN_DIR}/model.nc",
        history=f"results/runs/{RUN_DIR}/history.nc",
        prediction=f"results/runs/{RUN_DIR}/prediction.nc",
    log:
        log_path("train", RUN_DIR),
    benchmark:
        benchmark_path("train", RUN_DIR)
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
