# The dry run's estimate of the paper-scale run time (scale=dryrun only): from the timing and Snakemake
# benchmark files of every job of the DAG, once they have all run, and the paper-scale config.
ESTIMATE_FILES = [
    f"{DRYRUN_ESTIMATES}{part}.{suffix}" for part in ("", "_jobs") for suffix in ("csv", "md", "tex", "html")
]
FINAL_OUTPUTS.extend(ESTIMATE_FILES)


rule dryrun_estimates:
    input:
        runs=HC_RUNS + TI_RUNS + OG_ALL_RUNS,
        timings=[str(timing_path(path)) for path in HC_RUNS + TI_RUNS + OG_ALL_RUNS],
        features=expand(f"{TI_RESULTS}/features/{{dataset}}.timing.json", dataset=TI_DATASETS),
        depth=f"{OG_RESULTS}/depth.json",
        complexity=f"{CX_RESULTS}/measurements.csv",
        toy=rules.toy_reference.output + expand(rules.toy_trajectories.output, objective=["f", "f_tilde"]),
    output:
        ESTIMATE_FILES,
    params:
        full=json.dumps({key: FULL_CONFIG[key] for key in ("hypercleaning", "task_interaction", "omniglot")},
                        sort_keys=True),
        results=RESULTS,
        benchmarks=BENCHMARKS,
        stem=DRYRUN_ESTIMATES,
        threads=THREADS,
    log:
        f"{LOGS}/estimates.log",
    shell:
        "python -m truncback dryrun-estimates --full-config {params.full:q} --results {params.results:q}"
        " --benchmarks {params.benchmarks:q} --threads {params.threads:q} --cores {workflow.cores:q}"
        " --output {params.stem:q} > {log:q} 2>&1"
