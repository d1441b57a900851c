# FOM against UFOM (Likhosherstov et al., ICML 2021), a companion experiment: the task family where
# FOM's SGD stalls (SGD paths; UFOM's bias, variance, step evaluations and states held) under
# results/<scale>/fom_ufom/, then its figure and tables; and FOM and UFOM meta-training on one-shot
# Omniglot (omniglot.companion_runs, run by rules/omniglot.smk) beside 1-RMD and full RMD in one table.
FU_TABLES = {"paths": "paths", "estimator": "estimator", "memory": "estimator"}  # table -> the part it reads
FINAL_OUTPUTS.extend(f"{FIGURES}/companion_fom_ufom.{suffix}" for suffix in ("pdf", "png"))
FINAL_OUTPUTS.extend(
    f"{TABLES}/companion_fom_ufom_{name}.{suffix}"
    for name in [*FU_TABLES, "omniglot"]
    for suffix in ("csv", "md", "tex", "html")
)


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


rule fom_ufom_figure:
    input:
        paths=f"{FU_RESULTS}/paths.json",
        estimator=f"{FU_RESULTS}/estimator.json",
    output:
        pdf=f"{FIGURES}/companion_fom_ufom.pdf",
        png=report(
            f"{FIGURES}/companion_fom_ufom.png",
            caption="captions/fom_ufom.rst",
            category="FOM vs UFOM (companion, Likhosherstov et al. 2021)",
        ),
    log:
        f"{LOGS}/fom_ufom/figure.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        stem=stem("pdf"),
        code=code("figure-fom-ufom"),
    shell:
        "python -m truncback figure-fom-ufom --paths {input.paths:q} --estimator {input.estimator:q}"
        " --output {params.stem:q} > {log:q} 2>&1"


rule fom_ufom_table:
    input:
        result=lambda wildcards: f"{FU_RESULTS}/{FU_TABLES[wildcards.table]}.json",
        timing=lambda wildcards: f"{FU_RESULTS}/{FU_TABLES[wildcards.table]}.timing.json",
    output:
        csv=f"{TABLES}/companion_fom_ufom_{{table}}.csv",
        html=report(
            f"{TABLES}/companion_fom_ufom_{{table}}.html",
            caption="captions/fom_ufom.rst",
            category="FOM vs UFOM (companion, Likhosherstov et al. 2021)",
        ),
        md=f"{TABLES}/companion_fom_ufom_{{table}}.md",
        tex=f"{TABLES}/companion_fom_ufom_{{table}}.tex",
    log:
        f"{LOGS}/fom_ufom/table_{{table}}.log",
    wildcard_constraints:
        table=any_of(FU_TABLES),
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        stem=stem("csv"),
        code=code("table-fom-ufom"),
    shell:
        "python -m truncback table-fom-ufom {wildcards.table:q} --results {input.result:q} --output {params.stem:q}"
        " > {log:q} 2>&1"


rule fom_ufom_omniglot_table:
    input:
        results=FU_OMNIGLOT,
        timings=timings(FU_OMNIGLOT),
    output:
        csv=f"{TABLES}/companion_fom_ufom_omniglot.csv",
        html=report(
            f"{TABLES}/companion_fom_ufom_omniglot.html",
            caption="captions/fom_ufom.rst",
            category="FOM vs UFOM (companion, Likhosherstov et al. 2021)",
        ),
        md=f"{TABLES}/companion_fom_ufom_omniglot.md",
        tex=f"{TABLES}/companion_fom_ufom_omniglot.tex",
    log:
        f"{LOGS}/fom_ufom/table_omniglot.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        stem=stem("csv"),
        code=code("table-omniglot"),
    shell:
        "python -m truncback table-omniglot --results {input.results:q} --output {params.stem:q} > {log:q} 2>&1"
