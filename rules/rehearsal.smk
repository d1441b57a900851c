# The rehearsal's estimate of the paper-scale run time (scale=rehearsal only): from the timing and
# Snakemake benchmark files of every job of the DAG, once they have all run, and the paper-scale config.
ESTIMATE_FILES = [
    f"{REHEARSAL_ESTIMATES}{part}.{suffix}" for part in ("", "_jobs") for suffix in ("csv", "md", "tex", "html")
]
FINAL_OUTPUTS.extend(ESTIMATE_FILES)


rule rehearsal_estimates:
    input:
        runs=HC_RUNS + TI_RUNS + OG_ALL_RUNS,
        timings=timings(HC_RUNS + TI_RUNS + OG_ALL_RUNS),
        features=TI_FEATURE_TIMINGS,
        benchmarks=ALL_BENCHMARKS,
    output:
        ESTIMATE_FILES,
    log:
        f"{LOGS}/estimates.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        full=json.dumps(
            {key: FULL_CONFIG[key] for key in ("hypercleaning", "task_interaction", "omniglot")}, sort_keys=True
        ),
        results=RESULTS,
        benchmarks=BENCHMARKS,
        stem=REHEARSAL_ESTIMATES,
        threads=THREADS,
        cores=workflow.cores,
        code=code("rehearsal-estimates"),
    shell:
        "python -m truncback rehearsal-estimates --full-config {params.full:q} --results {params.results:q}"
        " --runs {input.runs:q} --features {input.features:q} --benchmark-root {params.benchmarks:q}"
        " --benchmarks {input.benchmarks:q} --threads {params.threads:q} --cores {params.cores:q}"
        " --output {params.stem:q} > {log:q} 2>&1"
