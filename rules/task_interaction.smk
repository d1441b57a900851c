# Task interaction (sec. 4.2.2): features computed once per dataset (ImageNet ResNet-18 at full scale,
# seeded random features at the reduced ones), one run per (dataset, trial, method) under
# results/<scale>/task_interaction/ (so the paper's runs fan out on a cluster), then Table 3 and Fig. 6
# drawn from those raw results only.
TASK_INTERACTION = config["task_interaction"]
TI_RESULTS = f"{RESULTS}/task_interaction"
TI_DATASETS = TASK_INTERACTION["datasets"]
TI_SPECS = dict(zip(CONFIG_LABELS["task_interaction"], TASK_INTERACTION["methods"]))
TI_RUNS = expand(f"{TI_RESULTS}/{{dataset}}/trial{{trial}}_{{method}}.json", dataset=TI_DATASETS,
                 method=list(TI_SPECS), trial=range(TASK_INTERACTION["trials"]))
FINAL_OUTPUTS.extend(f"{TABLES}/table3_task_interaction.{suffix}" for suffix in ("csv", "md", "tex", "html"))
FINAL_OUTPUTS.extend(f"{FIGURES}/fig6_task_interaction.{suffix}" for suffix in ("pdf", "png"))


_TI_WEIGHTS_ARCHIVE = data_sources.archive("resnet18_weights")
TI_WEIGHTS = (  # torchvision's file at full scale, its seeded stand-in in the dry run
    [str(data_layout.source_path(DATA_SCALE, data_sources.extra_archive_origin(DATA_SCALE, _TI_WEIGHTS_ARCHIVE.key),
                                 _TI_WEIGHTS_ARCHIVE))]
    if TASK_INTERACTION["features"]["extractor"] == "resnet18"
    else []
)


rule task_interaction_features:
    input:
        data=lambda wildcards: [str(data_layout.prepared_path(DATA_SCALE, f"{wildcards.dataset}_{split}"))
                                for split in ("train", "test")],
        weights=TI_WEIGHTS,
    output:
        train=f"{TI_RESULTS}/features/{{dataset}}_train.npz",
        test=f"{TI_RESULTS}/features/{{dataset}}_test.npz",
        timing=f"{TI_RESULTS}/features/{{dataset}}.timing.json",
    wildcard_constraints:
        dataset=any_of(TI_DATASETS),
    params:
        settings=json.dumps(TASK_INTERACTION["features"], sort_keys=True),
        weights=["--weights", *TI_WEIGHTS] if TI_WEIGHTS else [],
        torch_threads=THREADS,
        device=DEVICE,
    threads: THREADS
    log:
        f"{LOGS}/task_interaction/features_{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/task_interaction/features_{{dataset}}.tsv"
    shell:
        "python -m truncback features --data {input.data:q} --output {output.train:q} {output.test:q}"
        " --settings {params.settings:q} {params.weights:q} --threads {params.torch_threads:q}"
        " --device {params.device:q} --timing {output.timing:q} --log {log:q}"


rule task_interaction_run:
    input:
        train=f"{TI_RESULTS}/features/{{dataset}}_train.npz",
        test=f"{TI_RESULTS}/features/{{dataset}}_test.npz",
    output:
        result=f"{TI_RESULTS}/{{dataset}}/trial{{trial}}_{{method}}.json",
        timing=f"{TI_RESULTS}/{{dataset}}/trial{{trial}}_{{method}}.timing.json",
    wildcard_constraints:
        dataset=any_of(TI_DATASETS),
        trial=r"\d+",
        method=any_of(TI_SPECS),
    params:
        settings=lambda wildcards: json.dumps(  # the shared settings with the dataset's subset sizes
            {**TASK_INTERACTION["settings"], **TASK_INTERACTION["subsets"][wildcards.dataset]}, sort_keys=True
        ),
        method=lambda wildcards: json.dumps(TI_SPECS[wildcards.method], sort_keys=True),
        exact=lambda wildcards: [] if int(wildcards.trial) < TASK_INTERACTION["exact_trials"] else ["--no-exact"],
        torch_threads=THREADS,
        device=DEVICE,
    threads: THREADS
    log:
        f"{LOGS}/task_interaction/{{dataset}}_trial{{trial}}_{{method}}.log",
    benchmark:
        f"{BENCHMARKS}/task_interaction/{{dataset}}_trial{{trial}}_{{method}}.tsv"
    shell:
        "python -m truncback task-interaction --train {input.train:q} --test {input.test:q}"
        " --dataset {wildcards.dataset:q} --settings {params.settings:q} --method {params.method:q}"
        " --trial {wildcards.trial:q} {params.exact:q} --threads {params.torch_threads:q} --device {params.device:q}"
        " --output {output.result:q} --log {log:q}"


rule task_interaction_table:
    input:
        results=TI_RUNS,
        timings=[str(timing_path(path)) for path in TI_RUNS],
    output:
        csv=f"{TABLES}/table3_task_interaction.csv",
        html=report(f"{TABLES}/table3_task_interaction.html", caption="captions/table3.rst",
                    category="Task interaction (sec. 4.2.2)"),
        md=f"{TABLES}/table3_task_interaction.md",
        tex=f"{TABLES}/table3_task_interaction.tex",
    params:
        stem=f"{TABLES}/table3_task_interaction",
    log:
        f"{LOGS}/task_interaction/table3.log",
    shell:
        "python -m truncback table-task-interaction --results {input.results:q} --output {params.stem:q}"
        " > {log:q} 2>&1"


rule task_interaction_figure:
    input:
        TI_RUNS,
    output:
        pdf=f"{FIGURES}/fig6_task_interaction.pdf",
        png=report(f"{FIGURES}/fig6_task_interaction.png", caption="captions/task_interaction.rst",
                   category="Task interaction (sec. 4.2.2)"),
    params:
        stem=f"{FIGURES}/fig6_task_interaction",
    log:
        f"{LOGS}/task_interaction/fig6.log",
    shell:
        "python -m truncback figure-task-interaction --results {input:q} --output {params.stem:q} > {log:q} 2>&1"
