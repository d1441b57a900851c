# Table 1 (complexity): every method of the config's list timed and memory-profiled at several T by
# the benchmark (`bench-methods`, the code `make bench` runs); beside it, our methods timed against what
# a user writes by hand and the matmul floor (`bench-baselines`, the second half of `make bench`). Their
# tables (the paper's O() entries and the growth exponents fitted in T) are its descriptor's outputs
# (rules/outputs.smk).


rule complexity_measure:
    output:
        CX_MEASUREMENTS,
    log:
        f"{LOGS}/complexity/measure.log",
    benchmark:
        benchmark("complexity", "measure")
    threads: THREADS
    resources:
        mem_mb=13000,
        runtime="1h",
    params:
        methods=json.dumps(COMPLEXITY["methods"], sort_keys=True),
        T=COMPLEXITY["T_values"],
        problem=COMPLEXITY["problem"],
        n_train=COMPLEXITY["n_train"],
        torch_threads=THREADS,
        code=code("bench-methods"),
        torch=TORCH,
    shell:
        "python -m truncback bench-methods --problems {params.problem:q} --n-train {params.n_train:q}"
        " --T {params.T:q} --methods {params.methods:q} --threads {params.torch_threads:q} --output {output:q}"
        " > {log:q} 2>&1"


rule complexity_baselines:
    output:
        f"{CX_RESULTS}/baselines.csv",
    log:
        f"{LOGS}/complexity/baselines.log",
    benchmark:
        benchmark("complexity", "baselines")
    threads: THREADS
    resources:
        mem_mb=5000,
        runtime="1h",
    params:
        T=COMPLEXITY["T_values"],
        problem=COMPLEXITY["problem"],
        n_train=COMPLEXITY["n_train"],
        repeats=COMPLEXITY["baseline_repeats"],
        compiled="--compiled" if COMPLEXITY["compile"] else "",
        torch_threads=THREADS,
        code=code("bench-baselines"),
        torch=TORCH,
    shell:
        "python -m truncback bench-baselines --problems {params.problem:q} --n-train {params.n_train:q}"
        " --T {params.T:q} --repeats {params.repeats:q} --threads {params.torch_threads:q} {params.compiled}"
        " --output {output:q} > {log:q} 2>&1"
