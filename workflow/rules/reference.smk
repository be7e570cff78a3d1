# Stage 1: reference solutions, data/{target}.nc.


rule reference:
    output:
        "data/{target}.nc",
    log:
        log_path("reference", "{target}"),
    benchmark:
        benchmark_path("reference", "{target}")
    threads: 1
    params:
        target=target_params,
        code=reference_code,
    script:
        "../scripts/reference.py"


rule reference_all:
    input:
        expand("data/{target}.nc", target=TARGETS),
