# Task interaction (sec. 4.2.2): features computed once per dataset (ImageNet ResNet-18 at full scale,
# seeded random features at the reduced ones), one run per (dataset, trial, method) under
# results/<scale>/task_interaction/, one job each (so the paper's runs fan out over cores or a cluster)
# or, with batch_trials, the trials of a (dataset, method) batched in one job; Table 3 and Fig. 6, drawn
# from those raw results only, are its descriptor's outputs (rules/outputs.smk), which rule all leaves out at
# a scale without its datasets (offline: no CIFAR).


rule task_interaction_features:
    input:
        data=lambda wildcards: [prepared(f"{wildcards.dataset}_{split}") for split in ("train", "test")],
        weights=TI_WEIGHTS,
    output:
        train=f"{TI_RESULTS}/features/{{dataset}}_train.npz",
        test=f"{TI_RESULTS}/features/{{dataset}}_test.npz",
        timing=f"{TI_RESULTS}/features/{{dataset}}.timing.json",
    log:
        f"{LOGS}/task_interaction/features_{{dataset}}.log",
    benchmark:
        benchmark("task_interaction", "features_{dataset}")
    wildcard_constraints:
        dataset=any_of(TI_DATASETS),
    threads: THREADS
    resources:
        mem_mb=1500,
        runtime="2h",
        gpu=GPU_JOB,
    params:
        settings=json.dumps(TASK_INTERACTION["features"], sort_keys=True),
        weights=lambda wildcards, input: ["--weights", *input.weights] if input.weights else [],
        # only the training images the trials draw get features (the test split all)
        drawn=lambda wildcards: [
            wildcards.dataset,
            TASK_INTERACTION["trials"],
            TASK_INTERACTION["subsets"][wildcards.dataset]["train_per_class"],
            TASK_INTERACTION["subsets"][wildcards.dataset]["val_per_class"],
        ],
        torch_threads=THREADS,
        device=DEVICE,
        code=code("features"),
        torch=TORCH,
    shell:
        "python -m truncback features --data {input.data:q} --output {output.train:q} {output.test:q}"
        " --settings {params.settings:q} {params.weights:q} --threads {params.torch_threads:q}"
        " --device {params.device:q} --drawn {params.drawn:q} --timing {output.timing:q} --log {log:q}"


if not TI_BATCHED:

    rule task_interaction_run:
        input:
            train=f"{TI_RESULTS}/features/{{dataset}}_train.npz",
            test=f"{TI_RESULTS}/features/{{dataset}}_test.npz",
        output:
            result=f"{TI_RESULTS}/{{dataset}}/trial{{trial}}_{{method}}.json",
            timing=f"{TI_RESULTS}/{{dataset}}/trial{{trial}}_{{method}}.timing.json",
        log:
            f"{LOGS}/task_interaction/{{dataset}}_trial{{trial}}_{{method}}.log",
        benchmark:
            benchmark("task_interaction", "{dataset}_trial{trial}_{method}")
        wildcard_constraints:
            dataset=any_of(TI_DATASETS),
            trial=r"\d+",
            method=any_of(TI_SPECS),
        threads: THREADS
        resources:
            mem_mb=1500,
            runtime="5h",
        params:
            # the shared settings with the dataset's subset sizes
            settings=lambda wildcards: json.dumps(
                {**TASK_INTERACTION["settings"], **TASK_INTERACTION["subsets"][wildcards.dataset]}, sort_keys=True
            ),
            method=lambda wildcards: json.dumps(TI_SPECS[wildcards.method], sort_keys=True),
            exact_trials=TASK_INTERACTION["exact_trials"],
            torch_threads=THREADS,
            device=DEVICE,
            code=code("task-interaction-trials"),
            torch=TORCH,
        # the batched command with one trial: the same explicit batch (B = 1), several times faster a
        # trial than the generic step of `task-interaction` (`make bench`, bench-batched's B = 1 rows)
        shell:
            "python -m truncback task-interaction-trials --train {input.train:q} --test {input.test:q}"
            " --dataset {wildcards.dataset:q} --settings {params.settings:q} --method {params.method:q}"
            " --trials {wildcards.trial:q} --exact-trials {params.exact_trials:q} --threads {params.torch_threads:q}"
            " --device {params.device:q} --output {output.result:q} --log {log:q}"


if TI_BATCHED:

    rule task_interaction_run:
        input:
            train=f"{TI_RESULTS}/features/{{dataset}}_train.npz",
            test=f"{TI_RESULTS}/features/{{dataset}}_test.npz",
        output:
            results=expand(f"{TI_RESULTS}/{{{{dataset}}}}/trial{{trial}}_{{{{method}}}}.json", trial=TI_TRIALS),
            timings=expand(f"{TI_RESULTS}/{{{{dataset}}}}/trial{{trial}}_{{{{method}}}}.timing.json", trial=TI_TRIALS),
        log:
            f"{LOGS}/task_interaction/{{dataset}}_{{method}}.log",
        benchmark:
            benchmark("task_interaction", "{dataset}_{method}")
        wildcard_constraints:
            dataset=any_of(TI_DATASETS),
            method=any_of(TI_SPECS),
        threads: THREADS
        resources:
            # until the rehearsal measures the batched job: the per-trial jobs' estimates summed (at most 10 x 0.47 h,
            # full RMD on CIFAR-10) x 2; their peak memory (620 MB) x 1.5 plus the trials' states
            mem_mb=1500,
            runtime="10h",
        params:
            # the shared settings with the dataset's subset sizes
            settings=lambda wildcards: json.dumps(
                {**TASK_INTERACTION["settings"], **TASK_INTERACTION["subsets"][wildcards.dataset]}, sort_keys=True
            ),
            method=lambda wildcards: json.dumps(TI_SPECS[wildcards.method], sort_keys=True),
            trials=TI_TRIALS,
            exact_trials=TASK_INTERACTION["exact_trials"],
            torch_threads=THREADS,
            device=DEVICE,
            code=code("task-interaction-trials"),
            torch=TORCH,
        shell:
            "python -m truncback task-interaction-trials --train {input.train:q} --test {input.test:q}"
            " --dataset {wildcards.dataset:q} --settings {params.settings:q} --method {params.method:q}"
            " --trials {params.trials:q} --exact-trials {params.exact_trials:q} --threads {params.torch_threads:q}"
            " --device {params.device:q} --output {output.results:q} --log {log:q}"
