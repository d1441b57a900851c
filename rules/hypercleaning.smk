# Data hypercleaning (sec. 4.2.1): one hyper-optimisation per (K, seed) under results/<scale>/hypercleaning/,
# then Table 2 and Fig. 5 drawn from those raw results only.
import json

HYPERCLEANING = config["hypercleaning"]
HC_RESULTS = f"{RESULTS}/hypercleaning"
HC_RUNS = expand(f"{HC_RESULTS}/K{{K}}_seed{{seed}}.json", K=HYPERCLEANING["K_values"], seed=HYPERCLEANING["seeds"])
FINAL_OUTPUTS.extend(f"{TABLES}/table2_hypercleaning.{suffix}" for suffix in ("csv", "md", "tex"))
FINAL_OUTPUTS.extend(f"{FIGURES}/fig5_hypercleaning_gradnorm.{suffix}" for suffix in ("pdf", "png"))


rule hypercleaning_run:
    input:
        str(data_layout.prepared_path(DATA_SCALE, HYPERCLEANING["dataset"])),
    output:
        f"{HC_RESULTS}/K{{K}}_seed{{seed}}.json",
    wildcard_constraints:
        K=r"\d+",
        seed=r"\d+",
    params:
        settings=json.dumps(HYPERCLEANING["settings"], sort_keys=True),
        torch_threads=THREADS,
        device=DEVICE,
    threads: THREADS
    log:
        f"{LOGS}/hypercleaning/K{{K}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/hypercleaning/K{{K}}_seed{{seed}}.tsv"
    shell:
        "python -m truncback hypercleaning --data {input:q} --settings '{params.settings}' --K {wildcards.K}"
        " --seed {wildcards.seed} --threads {params.torch_threads} --device {params.device}"
        " --output {output:q} --log {log:q}"


rule hypercleaning_table:
    input:
        HC_RUNS,
    output:
        multiext(f"{TABLES}/table2_hypercleaning", ".csv", ".md", ".tex"),
    params:
        stem=f"{TABLES}/table2_hypercleaning",
    log:
        f"{LOGS}/hypercleaning/table2.log",
    shell:
        "python -m truncback table-hypercleaning --results {input:q} --output {params.stem:q} > {log:q} 2>&1"


rule hypercleaning_figure:
    input:
        HC_RUNS,
    output:
        pdf=f"{FIGURES}/fig5_hypercleaning_gradnorm.pdf",
        png=report(f"{FIGURES}/fig5_hypercleaning_gradnorm.png", caption="captions/hypercleaning.rst",
                   category="Data hypercleaning (sec. 4.2.1)"),
    params:
        stem=f"{FIGURES}/fig5_hypercleaning_gradnorm",
    log:
        f"{LOGS}/hypercleaning/fig5.log",
    shell:
        "python -m truncback figure-hypercleaning --results {input:q} --output {params.stem:q} > {log:q} 2>&1"
