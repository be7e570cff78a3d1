# Stage 4: every trained spiking network to hardware, one job per run: fixed-point files and
# their integer emulation for each weight width, NIR export, work and energy per inference
# (placeholders that say `diverged` for a diverged run); the bit sweep.

HARDWARE_BITS = config["hardware"]["bits"]
FINETUNE_BITS = config["hardware"]["finetune"]["bits"]
FINETUNED_RUNS = finetuned_runs(config)


wildcard_constraints:
    bits=r"\d+",


rule hardware:
    input:
        model=f"results/runs/{RUN_DIR}/model.nc",
        prediction=f"results/runs/{RUN_DIR}/prediction.nc",
        reference="data/{target}.nc",
    output:
        fixed=expand(
            f"results/hardware/{RUN_DIR}/fixed_w{{bits}}.nc",
            bits=HARDWARE_BITS,
            allow_missing=True,
        ),
        emulated=expand(
            f"results/hardware/{RUN_DIR}/emulated_w{{bits}}.nc",
            bits=HARDWARE_BITS,
            allow_missing=True,
        ),
        nir=f"results/hardware/{RUN_DIR}/model.nir",
        energy=f"results/hardware/{RUN_DIR}/energy.nc",
    log:
        log_path("hardware", RUN_DIR),
    benchmark:
        benchmark_path("hardware", RUN_DIR)
    params:
        bits=HARDWARE_BITS,
        # what conversion uses (not hardware.finetune: tuning reruns no conversion)
        settings={k: config["hardware"][k] for k in ("input_bits", "synaptic_delay")},
        code=code_fingerprint("fwdsnn.hardware.stage"),
    script:
        "../scripts/hardware.py"


# a trained run retrained in the loop at one weight width (hardware.finetune; fwdsnn.finetune)
rule hardware_finetune:
    input:
        model=f"results/runs/{RUN_DIR}/model.nc",
        reference="data/{target}.nc",
    output:
        model=f"results/hardware/{RUN_DIR}/model_w{{bits}}_tuned.nc",
        history=f"results/hardware/{RUN_DIR}/history_w{{bits}}_tuned.nc",
        fixed=f"results/hardware/{RUN_DIR}/fixed_w{{bits}}_tuned.nc",
        emulated=f"results/hardware/{RUN_DIR}/emulated_w{{bits}}_tuned.nc",
    log:
        log_path("hardware_finetune", f"{RUN_DIR}/w{{bits}}"),
    benchmark:
        benchmark_path("hardware_finetune", f"{RUN_DIR}/w{{bits}}")
    threads: config["threads"]
    resources:
        mem_mb=2000,
    params:
        settings=finetune_params,
        code=finetune_code,
    script:
        "../scripts/hardware_finetune.py"


rule hardware_finetune_all:
    input:
        expand(
            "results/hardware/{run}/emulated_w{bits}_tuned.nc",
            run=FINETUNED_RUNS,
            bits=FINETUNE_BITS,
        ),


rule bit_sweep:
    input:
        metrics=expand("results/runs/{run}/metrics.nc", run=SPIKING_RUNS),
        emulated=expand(
            "results/hardware/{run}/emulated_w{bits}.nc",
            run=SPIKING_RUNS,
            bits=HARDWARE_BITS,
        ),
        tuned=rules.hardware_finetune_all.input,
    output:
        table="results/tables/bit_sweep.nc",
        csv="results/tables/bit_sweep.csv",
        markdown=report(
            "results/tables/bit_sweep.md",
            caption="../report/bit_sweep_table.rst",
            category="Hardware",
        ),
        png=report(
            "results/figures/bit_sweep.png",
            caption="../report/bit_sweep.rst",
            category="Hardware",
        ),
        pdf="results/figures/bit_sweep.pdf",
    log:
        log_path("hardware", "bit_sweep"),
    benchmark:
        benchmark_path("hardware", "bit_sweep")
    params:
        runs=SPIKING_RUNS,
        bits=HARDWARE_BITS,
        tuned_runs=FINETUNED_RUNS,
        tuned_bits=FINETUNE_BITS,
        code=code_fingerprint("fwdsnn.tables", "fwdsnn.figures"),
    script:
        "../scripts/bit_sweep.py"


rule hardware_all:
    input:
        rules.bit_sweep.output,
        expand(
            "results/hardware/{run}/{name}",
            run=SPIKING_RUNS,
            name=["model.nir", "energy.nc"],
        ),
