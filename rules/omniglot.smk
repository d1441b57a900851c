# One-shot Omniglot meta-learning (sec. 4.3): one meta-training run per entry of the config's runs (and
# companion_runs) under results/<scale>/omniglot/ (checkpointed; a rerun after an interruption resumes), the depth
# study from the full-RMD run's final lam, then Table 4 and Fig. 7 drawn from those raw results only.
from truncback.experiments.omniglot.settings import OmniglotRun, every_run

OMNIGLOT = config["omniglot"]
OG_RESULTS = f"{RESULTS}/omniglot"
OG_SETTINGS = json.dumps(OMNIGLOT["settings"], sort_keys=True)
# Every run, Table 4's and the FOM-vs-UFOM companion's (rules/fom_ufom.smk), by its label.
OG_ENTRIES = dict(zip(CONFIG_LABELS["omniglot"], map(OmniglotRun.from_dict, every_run(OMNIGLOT))))
OG_ALL_RUNS = [f"{OG_RESULTS}/{name}.json" for name in OG_ENTRIES]
OG_RUNS = [f"{OG_RESULTS}/{name}.json" for name in OG_ENTRIES if name not in CONFIG_LABELS["omniglot_companion"]]
OG_DATA = {part: str(data_layout.prepared_path(DATA_SCALE, f"omniglot_{part}")) for part in ("background", "evaluation")}
FINAL_OUTPUTS.extend(f"{TABLES}/table4_omniglot.{suffix}" for suffix in ("csv", "md", "tex", "html"))
FINAL_OUTPUTS.extend(f"{FIGURES}/fig7_omniglot.{suffix}" for suffix in ("pdf", "png"))


rule omniglot_run:
    input:
        **OG_DATA,
    output:
        result=f"{OG_RESULTS}/{{run}}.json",
        timing=f"{OG_RESULTS}/{{run}}.timing.json",
        hparams=f"{OG_RESULTS}/{{run}}_hparams.npz",
    wildcard_constraints:
        run=any_of(OG_ENTRIES),
    params:
        settings=OG_SETTINGS,
        run=lambda wildcards: OG_ENTRIES[wildcards.run].arguments(),
        seed=OMNIGLOT["seed"],
        torch_threads=THREADS,
        device=DEVICE,
    threads: THREADS
    log:
        f"{LOGS}/omniglot/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/omniglot/{{run}}.tsv"
    shell:
        "python -m truncback omniglot --background {input.background:q} --evaluation {input.evaluation:q}"
        " --settings {params.settings:q} {params.run:q} --seed {params.seed:q} --threads {params.torch_threads:q}"
        " --device {params.device:q} --output {output.result:q} --hparams {output.hparams:q} --log {log:q}"


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
        " --settings {params.settings:q} --hparams {input.hparams:q} --seed {params.seed:q}"
        " --threads {params.torch_threads:q} --device {params.device:q} --output {output:q} --log {log:q}"


rule omniglot_table:
    input:
        results=OG_RUNS,
        timings=[str(timing_path(path)) for path in OG_RUNS],
    output:
        csv=f"{TABLES}/table4_omniglot.csv",
        html=report(f"{TABLES}/table4_omniglot.html", caption="captions/table4.rst",
                    category="One-shot Omniglot (sec. 4.3)"),
        md=f"{TABLES}/table4_omniglot.md",
        tex=f"{TABLES}/table4_omniglot.tex",
    params:
        stem=f"{TABLES}/table4_omniglot",
    log:
        f"{LOGS}/omniglot/table4.log",
    shell:
        "python -m truncback table-omniglot --results {input.results:q} --output {params.stem:q} > {log:q} 2>&1"


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
