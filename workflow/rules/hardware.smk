# Stage 4: every trained spiking network to hardware: fixed-point files and their integer
# emulation for each weight width, NIR export, work and energy per inference; the bit sweep.

HARDWARE_BITS = config["hardware"]["bits"]


wildcard_constraints:
    bits=r"\d+",


rule quantize:
    input:
        model=f"results/runs/{RUN_DIR}/model.nc",
        reference="data/{target}.nc",
    output:
        fixed=expand(f"results/hardware/{RUN_DIR}/fixed_w{{bits}}.nc", bits=HARDWARE_BITS, allow_missing=True),
        emulated=expand(f"results/hardware/{RUN_DIR}/emulated_w{{bits}}.nc", bits=HARDWARE_BITS, allow_missing=True),
    params:
        bits=HARDWARE_BITS,
        settings=config["hardware"],
        code=code_fingerprint("fwdsnn.hardware.convert", "fwdsnn.hardware.emulator"),
    log:
        log_path("hardware", f"{RUN_DIR}/quantize"),
    benchmark:
        benchmark_path("hardware", f"{RUN_DIR}/quantize")
    script:
        "../scripts/quantize.py"


rule nir_export:
    input:
        f"results/runs/{RUN_DIR}/model.nc",
    output:
        f"results/hardware/{RUN_DIR}/model.nir",
    params:
        code=code_fingerprint("fwdsnn.hardware.nir_export"),
    log:
        log_path("hardware", f"{RUN_DIR}/nir"),
    benchmark:
        benchmark_path("hardware", f"{RUN_DIR}/nir")
    script:
        "../scripts/nir_export.py"


rule energy:
    input:
        model=f"results/runs/{RUN_DIR}/model.nc",
        prediction=f"results/runs/{RUN_DIR}/prediction.nc",
    output:
        f"results/hardware/{RUN_DIR}/energy.nc",
    params:
        code=code_fingerprint("fwdsnn.hardware.energy"),
    log:
        log_path("hardware", f"{RUN_DIR}/energy"),
    benchmark:
        benchmark_path("hardware", f"{RUN_DIR}/energy")
    script:
        "../scripts/energy.py"


rule bit_sweep:
    input:
        metrics=expand("results/runs/{run}/metrics.nc", run=SPIKING_RUNS),
        emulated=expand("results/hardware/{run}/emulated_w{bits}.nc", run=SPIKING_RUNS, bits=HARDWARE_BITS),
    output:
        table="results/tables/bit_sweep.nc",
        csv="results/tables/bit_sweep.csv",
        markdown=report("results/tables/bit_sweep.md", caption="../report/bit_sweep_table.rst",
                        category="Hardware"),
        png=report("results/figures/bit_sweep.png", caption="../report/bit_sweep.rst",
                   category="Hardware"),
        pdf="results/figures/bit_sweep.pdf",
    params:
        runs=SPIKING_RUNS,
        bits=HARDWARE_BITS,
        code=code_fingerprint("fwdsnn.tables", "fwdsnn.figures"),
    log:
        log_path("hardware", "bit_sweep"),
    benchmark:
        benchmark_path("hardware", "bit_sweep")
    script:
        "../scripts/bit_sweep.py"


rule hardware_all:
    input:
        rules.bit_sweep.output,
        expand("results/hardware/{run}/{name}", run=SPIKING_RUNS, name=["model.nir", "energy.nc"]),
