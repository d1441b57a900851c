# One-shot Omniglot meta-learning (sec. 4.3): one meta-training run per method under
# results/<scale>/omniglot/ (checkpointed; a rerun after an interruption resumes), the depth study
# from the full-RMD run's final lam, then Table 4 and Fig. 7 drawn from those raw results only.
import json

OMNIGLOT = config["omniglot"]
OG_RESULTS = f"{RESULTS}/omniglot"
OG_SETTINGS = json.dumps(OMNIGLOT["settings"], sort_keys=True)
OG_T = OMNIGLOT["settings"].get("T", 50)
OG_METHODS = OMNIGLOT["methods"]
OG_RUNS = [f"{OG_RESULTS}/{name}.json" for name in OG_METHODS]
OG_DATA = {part: str(data_layout.prepared_path(DATA_SCALE, f"omniglot_{part}")) for part in ("background", "evaluation")}
FINAL_OUTPUTS.extend(f"{TABLES}/table4_omniglot.{suffix}" for suffix in ("csv", "md", "tex"))
FINAL_OUTPUTS.extend(f"{FIGURES}/fig7_omniglot.{suffix}" for suffix in ("pdf", "png"))

if OMNIGLOT["depth_from"] not in OG_METHODS:
    raise ValueError(f"omniglot.depth_from={OMNIGLOT['depth_from']!r} is not one of the methods {sorted(OG_METHODS)}")


def og_method_arguments(wildcards):
    method = OG_METHODS[wildcards.method]
    T = method.get("T", OG_T)
    return ["--K", method.get("K", T), "--T", T, "--iterations", method["iterations"],
            "--milestones", *method["milestones"]]


rule omniglot_run:
    input:
        **OG_DATA,
    output:
        result=f"{OG_RESULTS}/{{method}}.json",
        hparams=f"{OG_RESULTS}/{{method}}_hparams.npz",
    wildcard_constraints:
        method="|".join(OG_METHODS),
    params:
        settings=OG_SETTINGS,
        method=og_method_arguments,
        seed=OMNIGLOT["seed"],
        torch_threads=THREADS,
        device=DEVICE,
    threads: THREADS
    log:
        f"{LOGS}/omniglot/{{method}}.log",
    benchmark:
        f"{BENCHMARKS}/omniglot/{{method}}.tsv"
    shell:
        "python -m truncback omniglot --background {input.background:q} --evaluation {input.evaluation:q}"
        " --settings '{params.settings}' --method {wildcards.method} {params.method}"
        " --seed {params.seed} --threads {params.torch_threads} --device {params.device} --output {output.result:q}"
        " --hparams {output.hparams:q} --log {log:q}"


rule omniglot_depth:
    input:
        **OG_DATA,
        hparams=f"{OG_RESULTS}/{OMNIGLOT['depth_from']}_hparams.npz",
    output:
        f"{OG_RESULTS}/depth.json",
    params:
        settings=OG_SETTINGS,
        seed=OMNIGLOT["seed"],
        torch_threads=THREADS,
        device=DEVICE,
    threads: THREADS
    log:
        f"{LOGS}/omniglot/depth.log",
    benchmark:
        f"{BENCHMARKS}/omniglot/depth.tsv"
    shell:
        "python -m truncback omniglot-depth --background {input.background:q} --evaluation {input.evaluation:q}"
        " --settings '{params.settings}' --hparams {input.hparams:q} --seed {params.seed}"
        " --threads {params.torch_threads} --device {params.device} --output {output:q} --log {log:q}"


rule omniglot_table:
    input:
        OG_RUNS,
    output:
        multiext(f"{TABLES}/table4_omniglot", ".csv", ".md", ".tex"),
    params:
        stem=f"{TABLES}/table4_omniglot",
    log:
        f"{LOGS}/omniglot/table4.log",
    shell:
        "python -m truncback table-omniglot --results {input:q} --output {params.stem:q} > {log:q} 2>&1"


rule omniglot_figure:
    input:
        runs=OG_RUNS,
        depth=f"{OG_RESULTS}/depth.json",
    output:
        pdf=f"{FIGURES}/fig7_omniglot.pdf",
        png=report(f"{FIGURES}/fig7_omniglot.png", caption="captions/omniglot.rst",
                   category="One-shot Omniglot (sec. 4.3)"),
    params:
        stem=f"{FIGURES}/fig7_omniglot",
    log:
        f"{LOGS}/omniglot/fig7.log",
    shell:
        "python -m truncback figure-omniglot --results {input.runs:q} --depth {input.depth:q}"
        " --output {params.stem:q} > {log:q} 2>&1"
