# AID against ITD (Grazzi et al., ICML 2020), a companion experiment: one job per problem under
# results/<scale>/aid_vs_itd/, then the figure (error against iterations; a second file against
# seconds) and the iterations-to-tolerance table, drawn from those raw results only.
FINAL_OUTPUTS.extend(
    f"{FIGURES}/companion_aid_vs_itd{kind}.{suffix}" for kind in ("", "_time") for suffix in ("pdf", "png")
)
FINAL_OUTPUTS.extend(f"{TABLES}/companion_aid_vs_itd.{suffix}" for suffix in ("csv", "md", "tex", "html"))


rule aid_vs_itd_run:
    input:
        # the MNIST of Table 2, for the logistic-regression and hypercleaning problems
        lambda wildcards: [] if wildcards.problem == "ridge" else [HC_DATA],
    output:
        result=f"{AID_RESULTS}/{{problem}}.json",
        timing=f"{AID_RESULTS}/{{problem}}.timing.json",
    log:
        f"{LOGS}/aid_vs_itd/{{problem}}.log",
    benchmark:
        benchmark("aid_vs_itd", "{problem}")
    wildcard_constraints:
        problem=any_of(AID_PROBLEMS),
    threads: THREADS
    resources:
        mem_mb=1000,
        runtime="30m",
    params:
        settings=json.dumps(AID_VS_ITD, sort_keys=True),
        data=lambda wildcards, input: f"--data {shlex.quote(input[0])}" if input else "",
        torch_threads=THREADS,
        code=code("aid-vs-itd"),
        torch=TORCH,
    shell:
        "python -m truncback aid-vs-itd --problem {wildcards.problem:q} {params.data} --settings {params.settings:q}"
        " --threads {params.torch_threads:q} --output {output.result:q} --log {log:q}"


rule aid_vs_itd_table:
    input:
        results=AID_RUNS,
        timings=timings(AID_RUNS),
    output:
        csv=f"{TABLES}/companion_aid_vs_itd.csv",
        html=report(
            f"{TABLES}/companion_aid_vs_itd.html",
            caption="captions/aid_vs_itd.rst",
            category="AID vs ITD (companion, Grazzi et al. 2020)",
        ),
        md=f"{TABLES}/companion_aid_vs_itd.md",
        tex=f"{TABLES}/companion_aid_vs_itd.tex",
    log:
        f"{LOGS}/aid_vs_itd/table.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        stem=stem("csv"),
        code=code("table-aid-vs-itd"),
    shell:
        "python -m truncback table-aid-vs-itd --results {input.results:q} --output {params.stem:q} > {log:q} 2>&1"


rule aid_vs_itd_figure:
    input:
        results=AID_RUNS,
        timings=timings(AID_RUNS),
    output:
        pdf=f"{FIGURES}/companion_aid_vs_itd.pdf",
        png=report(
            f"{FIGURES}/companion_aid_vs_itd.png",
            caption="captions/aid_vs_itd.rst",
            category="AID vs ITD (companion, Grazzi et al. 2020)",
        ),
        time_pdf=f"{FIGURES}/companion_aid_vs_itd_time.pdf",
        time_png=f"{FIGURES}/companion_aid_vs_itd_time.png",
    log:
        f"{LOGS}/aid_vs_itd/figure.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        stem=stem("pdf"),
        time_stem=stem("time_pdf"),
        code=code("figure-aid-vs-itd"),
    shell:
        "python -m truncback figure-aid-vs-itd --results {input.results:q} --output {params.stem:q}"
        " --time-output {params.time_stem:q} > {log:q} 2>&1"
