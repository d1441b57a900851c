# The reproduction report: the paper's numbers and claims (config/paper_reference.yaml) against the raw
# results of every experiment of the scale, each with a verdict; read from raw results and Snakemake's
# benchmark files only.
FINAL_OUTPUTS.extend(f"{TABLES}/reproduction_report.{suffix}" for suffix in ("md", "html"))
# The dry run's full-scale estimates (rules/dryrun.smk): an input at scale=dryrun, else shown when present.
DRYRUN_ESTIMATES = "paper_tables/dryrun/full_run_estimates"


rule reproduction_report:
    input:
        reference="config/paper_reference.yaml",
        spread="config/cross_machine_spread.yaml",
        toy=[f"{TOY_RESULTS}/{name}.json" for name in ("bound", "trajectories_f", "trajectories_f_tilde", "optimum")],
        hypercleaning=HC_RUNS,
        task_interaction=TI_RUNS,
        omniglot=OG_RUNS,
        timings=[str(timing_path(path)) for path in HC_RUNS + TI_RUNS + OG_RUNS],
        depth=f"{OG_RESULTS}/depth.json",
        aid_vs_itd=AID_RUNS,
        fom_ufom=[f"{FU_RESULTS}/{part}.json" for part in FU_PARTS],
        complexity=f"{CX_RESULTS}/measurements.csv",
        tables=rules.complexity_table.output + rules.hypercleaning_table.output + rules.task_interaction_table.output
        + rules.omniglot_table.output,
        estimates=[f"{DRYRUN_ESTIMATES}.csv"] if SCALE == "dryrun" else [],
    output:
        md=f"{TABLES}/reproduction_report.md",
        html=report(f"{TABLES}/reproduction_report.html", caption="captions/report.rst",
                    category="Reproduction report"),
    params:
        scale=SCALE,
        toy=lambda wildcards, input: str(Path(input.toy[0]).parent),
        benchmarks=BENCHMARKS,
        estimates=f"{DRYRUN_ESTIMATES}.csv",
    log:
        f"{LOGS}/report.log",
    shell:
        "python -m truncback reproduction-report --scale {params.scale:q} --reference {input.reference:q}"
        " --toy-dir {params.toy:q} --hypercleaning {input.hypercleaning:q} --task-interaction {input.task_interaction:q}"
        " --omniglot {input.omniglot:q} --aid-vs-itd {input.aid_vs_itd:q} --fom-ufom {input.fom_ufom:q}"
        " --depth {input.depth:q} --complexity {input.complexity:q}"
        " --benchmarks {params.benchmarks:q} --estimates {params.estimates:q} --spread {input.spread:q}"
        " --output {output.md:q} > {log:q} 2>&1"
