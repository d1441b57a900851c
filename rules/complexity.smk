# Table 1 (complexity): every method of the config's list timed and memory-profiled at several T by
# the benchmark (`bench-methods`, the code `make bench` runs), then the table with the paper's O()
# entries and the growth exponents fitted in T; beside it, our methods timed against what a user
# writes by hand and the matmul floor (`bench-baselines`, the second half of `make bench`).
FINAL_OUTPUTS.extend(
    f"{TABLES}/{table}.{suffix}"
    for table in ("table1_complexity", "table1_baselines")
    for suffix in ("csv", "md", "tex", "html")
)


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


rule complexity_table:
    input:
        CX_MEASUREMENTS,
    output:
        csv=f"{TABLES}/table1_complexity.csv",
        html=report(
            f"{TABLES}/table1_complexity.html",
            caption="captions/complexity.rst",
            category="Complexity (Table 1)",
        ),
        md=f"{TABLES}/table1_complexity.md",
        tex=f"{TABLES}/table1_complexity.tex",
    log:
        f"{LOGS}/complexity/table1.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        stem=stem("csv"),
        n_train=COMPLEXITY["n_train"],
        code=code("table-complexity"),
    shell:
        "python -m truncback table-complexity --measurements {input:q} --n-train {params.n_train:q}"
        " --output {params.stem:q} > {log:q} 2>&1"


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


rule complexity_baselines_table:
    input:
        f"{CX_RESULTS}/baselines.csv",
    output:
        csv=f"{TABLES}/table1_baselines.csv",
        html=report(
            f"{TABLES}/table1_baselines.html",
            caption="captions/complexity_baselines.rst",
            category="Complexity (Table 1)",
        ),
        md=f"{TABLES}/table1_baselines.md",
        tex=f"{TABLES}/table1_baselines.tex",
    log:
        f"{LOGS}/complexity/table1_baselines.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        stem=stem("csv"),
        code=code("table-baselines"),
    shell:
        "python -m truncback table-baselines --results {input:q} --output {params.stem:q} > {log:q} 2>&1"
