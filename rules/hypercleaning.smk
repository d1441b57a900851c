# Data hypercleaning (sec. 4.2.1): one hyper-optimisation per (method, seed) under
# results/<scale>/hypercleaning/; Table 2 and Fig. 5, drawn from those raw results only, are its
# descriptor's outputs (rules/outputs.smk). Methods are the config's specs; a run's file is named by its
# label (krmd-K5, rmd, aid_cg-K10, ...).


rule hypercleaning_run:
    input:
        HC_DATA,
    output:
        result=f"{HC_RESULTS}/{{method}}_seed{{seed}}.json",
        timing=f"{HC_RESULTS}/{{method}}_seed{{seed}}.timing.json",
    log:
        f"{LOGS}/hypercleaning/{{method}}_seed{{seed}}.log",
    benchmark:
        benchmark("hypercleaning", "{method}_seed{seed}")
    wildcard_constraints:
        method=any_of(HC_SPECS),
        seed=r"\d+",
    threads: THREADS
    resources:
        mem_mb=1000,
        runtime="1h",
        gpu=GPU_JOB,
    params:
        settings=json.dumps(HYPERCLEANING["settings"], sort_keys=True),
        method=lambda wildcards: json.dumps(HC_SPECS[wildcards.method], sort_keys=True),
        torch_threads=THREADS,
        device=DEVICE,
        code=code("hypercleaning"),
        torch=TORCH,
    shell:
        "python -m truncback hypercleaning --data {input:q} --settings {params.settings:q} --method {params.method:q}"
        " --seed {wildcards.seed:q} --threads {params.torch_threads:q} --device {params.device:q}"
        " --output {output.result:q} --log {log:q}"
