# The reproduction report: the paper's numbers and claims (config/paper_reference.yaml) against the raw
# results of every experiment of the scale, each with a verdict; read from the raw results, Snakemake's
# benchmark files of the scale and the rehearsal's full-scale estimates and the sensitivity study's
# summary (when they exist) only. Each experiment's files the report reads, and the options passing them,
# are its descriptor's `report` (src/truncback/experiments/<name>/descriptor.py), in the registry's order.
REPORT_INPUTS = report_inputs(EXPERIMENTS, EXPERIMENT_FILES)
FINAL_OUTPUTS.extend(f"{TABLES}/reproduction_report.{suffix}" for suffix in ("md", "html"))


rule reproduction_report:
    input:
        **{name: entry.files for name, entry in REPORT_INPUTS.items()},
        reference="config/paper_reference.yaml",
        spread=measured_spread,
        benchmarks=ALL_BENCHMARKS,
        estimates=rehearsal_estimates,
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
        results=report_options(REPORT_INPUTS),
        estimates=lambda wildcards, input: ["--estimates", *input.estimates] if input.estimates else [],
        spread=lambda wildcards, input: ["--spread", *input.spread] if input.spread else [],
        code=code("reproduction-report"),
    shell:
        "python -m truncback reproduction-report --scale {params.scale:q} --reference {input.reference:q}"
        " {params.results:q} --benchmarks {input.benchmarks:q} {params.estimates:q} {params.spread:q}"
        " --output {output.md:q} > {log:q} 2>&1"
