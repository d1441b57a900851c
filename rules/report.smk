# The reproduction report: the paper's numbers and claims (config/paper_reference.yaml) against the raw
# results of every experiment of the scale, each with a verdict; read from the raw results, Snakemake's
# benchmark files of the scale and the rehearsal's full-scale estimates and the sensitivity study's
# summary (when they exist) only.
FINAL_OUTPUTS.extend(f"{TABLES}/reproduction_report.{suffix}" for suffix in ("md", "html"))


rule reproduction_report:
    input:
        reference="config/paper_reference.yaml",
        spread=measured_spread,
        toy=[TOY_REFERENCE["bound.json"], TOY_REFERENCE["optimum.json"], *TOY_TRAJECTORIES],
        hypercleaning=HC_RUNS,
        task_interaction=TI_RUNS,
        omniglot=OG_RUNS,
        timings=timings(HC_RUNS + TI_RUNS + OG_RUNS),
        depth=OG_DEPTH,
        aid_vs_itd=AID_RUNS,
        fom_ufom=FU_RUNS,
        complexity=CX_MEASUREMENTS,
        benchmarks=ALL_BENCHMARKS,
        estimates=rehearsal_estimates,
        sensitivity=sensitivity_summary,
    output:
        md=f"{TABLES}/reproduction_report.md",
        html=report(
            f"{TABLES}/reproduction_report.html",
            caption="captions/report.rst",
            category="Reproduction report",
        ),
    log:
        f"{LOGS}/report.log",
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        scale=SCALE,
        toy=lambda wildcards, input: str(Path(input.toy[0]).parent),
        estimates=lambda wildcards, input: ["--estimates", *input.estimates] if input.estimates else [],
        spread=lambda wildcards, input: ["--spread", *input.spread] if input.spread else [],
        sensitivity=lambda wildcards, input: ["--sensitivity", *input.sensitivity] if input.sensitivity else [],
        code=code("reproduction-report"),
    shell:
        "python -m truncback reproduction-report --scale {params.scale:q} --reference {input.reference:q}"
        " --toy-dir {params.toy:q} --hypercleaning {input.hypercleaning:q} --task-interaction {input.task_interaction:q}"
        " --omniglot {input.omniglot:q} --aid-vs-itd {input.aid_vs_itd:q} --fom-ufom {input.fom_ufom:q}"
        " --depth {input.depth:q} --complexity {input.complexity:q} --benchmarks {input.benchmarks:q}"
        " {params.estimates:q} {params.spread:q} {params.sensitivity:q} --output {output.md:q} > {log:q} 2>&1"
