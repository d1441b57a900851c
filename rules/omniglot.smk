# One-shot Omniglot meta-learning (sec. 4.3): one meta-training run per entry of the config's runs (and
# companion_runs) under results/<scale>/omniglot/ (checkpointed; a rerun after an interruption resumes),
# the depth study from the full-RMD run's final lam; Table 4 and Fig. 7, drawn from those raw results
# only, are its descriptor's outputs (rules/outputs.smk).


rule omniglot_run:
    input:
        **OG_DATA,
    output:
        result=f"{OG_RESULTS}/{{run}}.json",
        timing=f"{OG_RESULTS}/{{run}}.timing.json",
        hparams=f"{OG_RESULTS}/{{run}}_hparams.npz",
    log:
        f"{LOGS}/omniglot/{{run}}.log",
    benchmark:
        benchmark("omniglot", "{run}")
    wildcard_constraints:
        run=any_of(OG_ENTRIES),
    threads: THREADS
    resources:
        mem_mb=2500,
        runtime="4h",
        gpu=GPU_JOB,
    params:
        settings=json.dumps(OMNIGLOT["settings"], sort_keys=True),
        run=lambda wildcards: OG_ENTRIES[wildcards.run].arguments(),
        seed=OMNIGLOT["seed"],
        torch_threads=THREADS,
        device=DEVICE,
        code=code("omniglot"),
        torch=TORCH,
    shell:
        "python -m truncback omniglot --background {input.background:q} --evaluation {input.evaluation:q}"
        " --settings {params.settings:q} {params.run:q} --seed {params.seed:q} --threads {params.torch_threads:q}"
        " --device {params.device:q} --output {output.result:q} --hparams {output.hparams:q} --log {log:q}"


rule omniglot_depth:
    input:
        **OG_DATA,
        hparams=f"{OG_RESULTS}/{OMNIGLOT['depth_from']}_hparams.npz",
    output:
        OG_DEPTH,
    log:
        f"{LOGS}/omniglot/depth.log",
    benchmark:
        benchmark("omniglot", "depth")
    threads: THREADS
    resources:
        mem_mb=1000,
        runtime="30m",
        gpu=GPU_JOB,
    params:
        settings=json.dumps(OMNIGLOT["settings"], sort_keys=True),
        seed=OMNIGLOT["seed"],
        learned_from=OMNIGLOT["depth_from"],
        torch_threads=THREADS,
        device=DEVICE,
        code=code("omniglot-depth"),
        torch=TORCH,
    shell:
        "python -m truncback omniglot-depth --background {input.background:q} --evaluation {input.evaluation:q}"
        " --settings {params.settings:q} --hparams {input.hparams:q} --learned-from {params.learned_from:q}"
        " --seed {params.seed:q} --threads {params.torch_threads:q} --device {params.device:q} --output {output:q}"
        " --log {log:q}"
