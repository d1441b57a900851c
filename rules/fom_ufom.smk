# FOM against UFOM (Likhosherstov et al., ICML 2021), a companion experiment: the task family where
# FOM's SGD stalls (SGD paths; UFOM's bias, variance, step evaluations and states held) under
# results/<scale>/fom_ufom/; its figure and tables, and FOM and UFOM meta-training on one-shot Omniglot
# (omniglot.companion_runs, run by rules/omniglot.smk) beside 1-RMD and full RMD in one table, are its
# descriptor's outputs (rules/outputs.smk).


rule fom_ufom_run:
    output:
        result=f"{FU_RESULTS}/{{part}}.json",
        timing=f"{FU_RESULTS}/{{part}}.timing.json",
    log:
        f"{LOGS}/fom_ufom/{{part}}.log",
    benchmark:
        benchmark("fom_ufom", "{part}")
    wildcard_constraints:
        part=any_of(FU_PARTS),
    threads: THREADS
    resources:
        mem_mb=1000,
        runtime="30m",
    params:
        settings=json.dumps(FOM_UFOM, sort_keys=True),
        torch_threads=THREADS,
        code=code("fom-ufom"),
        torch=TORCH,
    shell:
        "python -m truncback fom-ufom {wildcards.part:q} --settings {params.settings:q} --threads {params.torch_threads:q}"
        " --output {output.result:q} --log {log:q}"
