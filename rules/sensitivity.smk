# The sensitivity study: how much each choice the paper leaves open moves Tables 2 and 4 and C4, and how
# Table 4 moves with the meta-training data. Each run is an ordinary `hypercleaning` or `omniglot` run
# (resumable, code-tracked, its health recorded) under results/<scale>/sensitivity/<part>/<variant>/; the
# grid is the config's `sensitivity` section, one entry per variant or pool size. Not in rule all:
#   snakemake --cores all sensitivity --config scale=<scale> [data_dir=DIR]
# makes its tables and figures (paper_tables/<scale>/sensitivity.md: the tables alone), at the offline and
# full scales printing its estimated time first; once its summary exists, the report shows it.
# The Snakefile's onstart calls announce_study.
from truncback.experiments.sensitivity.estimate import announce_study
from truncback.experiments.sensitivity.settings import names, run_named

SE_STUDY = json.dumps(
    {
        "sensitivity": SENSITIVITY,
        "hypercleaning": {"settings": HYPERCLEANING["settings"]},
        "omniglot": {"settings": OMNIGLOT["settings"]},
    },
    sort_keys=True,
)
SE_SCALING = SENSITIVITY["data_scaling"]


rule sensitivity_hypercleaning:
    input:
        HC_DATA,
    output:
        result=f"{SE_RESULTS}/hypercleaning/{{variant}}/{{label}}_seed{{seed}}.json",
        timing=f"{SE_RESULTS}/hypercleaning/{{variant}}/{{label}}_seed{{seed}}.timing.json",
        hparams=f"{SE_RESULTS}/hypercleaning/{{variant}}/{{label}}_seed{{seed}}.npz",
    log:
        f"{LOGS}/sensitivity/hypercleaning/{{variant}}/{{label}}_seed{{seed}}.log",
    benchmark:
        benchmark("sensitivity", "hypercleaning_{variant}_{label}_seed{seed}")
    wildcard_constraints:
        variant=any_of(names(SE_RUNS, "hypercleaning", "variant")),
        label=any_of(names(SE_RUNS, "hypercleaning", "label")),
        seed=r"\d+",
    threads: THREADS
    resources:
        mem_mb=1000,
        runtime="1h",
        gpu=GPU_JOB,
    params:
        settings=lambda wildcards: json.dumps(run_named(SE_RUNS, "hypercleaning", wildcards).settings, sort_keys=True),
        method=lambda wildcards: json.dumps(run_named(SE_RUNS, "hypercleaning", wildcards).method, sort_keys=True),
        torch_threads=THREADS,
        device=DEVICE,
        code=code("hypercleaning"),
        torch=TORCH,
    shell:
        "python -m truncback hypercleaning --data {input:q} --settings {params.settings:q} --method {params.method:q}"
        " --seed {wildcards.seed:q} --threads {params.torch_threads:q} --device {params.device:q}"
        " --output {output.result:q} --hparams {output.hparams:q} --log {log:q}"


rule sensitivity_omniglot:
    input:
        **OG_DATA,
    output:
        result=f"{SE_RESULTS}/omniglot/{{variant}}/{{label}}_seed{{seed}}.json",
        timing=f"{SE_RESULTS}/omniglot/{{variant}}/{{label}}_seed{{seed}}.timing.json",
        hparams=f"{SE_RESULTS}/omniglot/{{variant}}/{{label}}_seed{{seed}}.npz",
    log:
        f"{LOGS}/sensitivity/omniglot/{{variant}}/{{label}}_seed{{seed}}.log",
    benchmark:
        benchmark("sensitivity", "omniglot_{variant}_{label}_seed{seed}")
    wildcard_constraints:
        variant=any_of(names(SE_RUNS, "omniglot", "variant")),
        label=any_of(names(SE_RUNS, "omniglot", "label")),
        seed=r"\d+",
    threads: THREADS
    resources:
        mem_mb=2500,
        runtime="1h",
        gpu=GPU_JOB,
    params:
        settings=lambda wildcards: json.dumps(run_named(SE_RUNS, "omniglot", wildcards).settings, sort_keys=True),
        run=lambda wildcards: run_named(SE_RUNS, "omniglot", wildcards).run.arguments(),
        torch_threads=THREADS,
        device=DEVICE,
        code=code("omniglot"),
        torch=TORCH,
    shell:
        "python -m truncback omniglot --background {input.background:q} --evaluation {input.evaluation:q}"
        " --settings {params.settings:q} {params.run:q} --seed {wildcards.seed:q} --threads {params.torch_threads:q}"
        " --device {params.device:q} --output {output.result:q} --hparams {output.hparams:q} --log {log:q}"


rule sensitivity_held_out:
    input:
        **OG_DATA,
    output:
        f"{SE_RESULTS}/data_scaling/held_out.npz",
    log:
        f"{LOGS}/sensitivity/data_scaling/held_out.log",
    benchmark:
        benchmark("sensitivity", "data_scaling_held_out")
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        alphabets=SE_SCALING["held_out"],
        code=code("sensitivity-pool"),
    shell:
        "python -m truncback sensitivity-pool --background {input.background:q} --evaluation {input.evaluation:q}"
        " --alphabets {params.alphabets:q} --output {output:q} > {log:q} 2>&1"


rule sensitivity_pool:
    input:
        **OG_DATA,
    output:
        f"{SE_RESULTS}/data_scaling/pool{{size}}.npz",
    log:
        f"{LOGS}/sensitivity/data_scaling/pool{{size}}.log",
    benchmark:
        benchmark("sensitivity", "data_scaling_pool{size}")
    wildcard_constraints:
        size=any_of(names(SE_RUNS, "data_scaling", "pool")),
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        alphabets=SE_SCALING["pool_alphabets"],
        exclude=SE_SCALING["held_out"],
        code=code("sensitivity-pool"),
    shell:
        "python -m truncback sensitivity-pool --background {input.background:q} --evaluation {input.evaluation:q}"
        " --alphabets {params.alphabets:q} --characters {wildcards.size:q} --exclude {params.exclude:q}"
        " --output {output:q} > {log:q} 2>&1"


rule sensitivity_data_scaling:
    input:
        background=f"{SE_RESULTS}/data_scaling/pool{{size}}.npz",
        evaluation=f"{SE_RESULTS}/data_scaling/held_out.npz",
    output:
        result=f"{SE_RESULTS}/data_scaling/pool{{size}}/{{label}}_seed{{seed}}.json",
        timing=f"{SE_RESULTS}/data_scaling/pool{{size}}/{{label}}_seed{{seed}}.timing.json",
        hparams=f"{SE_RESULTS}/data_scaling/pool{{size}}/{{label}}_seed{{seed}}.npz",
    log:
        f"{LOGS}/sensitivity/data_scaling/pool{{size}}/{{label}}_seed{{seed}}.log",
    benchmark:
        benchmark("sensitivity", "data_scaling_pool{size}_{label}_seed{seed}")
    wildcard_constraints:
        size=any_of(names(SE_RUNS, "data_scaling", "pool")),
        label=any_of(names(SE_RUNS, "data_scaling", "label")),
        seed=r"\d+",
    threads: THREADS
    resources:
        mem_mb=2500,
        runtime="2h",
        gpu=GPU_JOB,
    params:
        settings=lambda wildcards: json.dumps(run_named(SE_RUNS, "data_scaling", wildcards).settings, sort_keys=True),
        run=lambda wildcards: run_named(SE_RUNS, "data_scaling", wildcards).run.arguments(),
        torch_threads=THREADS,
        device=DEVICE,
        code=code("omniglot"),
        torch=TORCH,
    shell:
        "python -m truncback omniglot --background {input.background:q} --evaluation {input.evaluation:q}"
        " --settings {params.settings:q} {params.run:q} --seed {wildcards.seed:q} --threads {params.torch_threads:q}"
        " --device {params.device:q} --output {output.result:q} --hparams {output.hparams:q} --log {log:q}"


rule sensitivity_summary:
    input:
        runs=[f"{SE_RESULTS}/{job}.json" for job in SE_RUNS],
        hparams=[f"{SE_RESULTS}/{job}.npz" for job, run in SE_RUNS.items() if run.part == "hypercleaning"],
        reference="config/paper_reference.yaml",
    output:
        SE_SUMMARY,
    log:
        f"{LOGS}/sensitivity/summary.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        study=SE_STUDY,
        results=lambda wildcards, output: str(Path(output[0]).parent),
        code=code("sensitivity-summary"),
    shell:
        "python -m truncback sensitivity-summary --study {params.study:q} --results-dir {params.results:q}"
        " --reference {input.reference:q} --output {output:q} > {log:q} 2>&1"


rule sensitivity_figure:
    input:
        SE_SUMMARY,
    output:
        **{f"choices_{suffix}": f"{FIGURES}/sensitivity_choices.{suffix}" for suffix in ("pdf", "png")},
        **{f"scaling_{suffix}": f"{FIGURES}/sensitivity_data_scaling.{suffix}" for suffix in ("pdf", "png")},
    log:
        f"{LOGS}/sensitivity/figure.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        choices=stem("choices_pdf"),
        scaling=stem("scaling_pdf"),
        code=code("figure-sensitivity"),
    shell:
        "python -m truncback figure-sensitivity --summary {input:q} --choices {params.choices:q}"
        " --data-scaling {params.scaling:q} > {log:q} 2>&1"


rule sensitivity_table:
    input:
        summary=SE_SUMMARY,
    output:
        **{suffix: f"{TABLES}/sensitivity.{suffix}" for suffix in ("csv", "md", "tex", "html")},
        **{
            f"scaling_{suffix}": f"{TABLES}/sensitivity_data_scaling.{suffix}"
            for suffix in ("csv", "md", "tex", "html")
        },
    log:
        f"{LOGS}/sensitivity/table.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        stem=stem("csv"),
        scaling=stem("scaling_csv"),
        code=code("table-sensitivity"),
    shell:
        "python -m truncback table-sensitivity --summary {input.summary:q} --output {params.stem:q}"
        " --data-scaling-output {params.scaling:q} > {log:q} 2>&1"


rule sensitivity:
    input:
        rules.sensitivity_table.output,
        rules.sensitivity_figure.output,
