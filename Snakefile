# Reproduction of Shaban et al., "Truncated Back-propagation for Bilevel Optimization" (AISTATS 2019).
#
#   snakemake --cores all                            every figure and table at paper scale
#   snakemake --cores all --config scale=smoke       the same DAG at a reduced scale (smoke | quick)
#   snakemake --cores all --config scale=offline data_dir=DIR
#                                                    the paper's settings on the offline real subsets
#   snakemake --cores all --config scale=rehearsal   every paper-scale job on synthetic data of the real
#                                                    sizes, a few iterations each, and the full run's time
#   snakemake --cores 2 figures/fig1_toy_bound.pdf   one output
#   snakemake --cores all sensitivity --config scale=offline data_dir=DIR
#                                                    the sensitivity study (not in `all`)
#
# All logic lives in the `truncback` package; every rule runs one `python -m truncback ...` command
# and carries that command's code version as a param, so a job reruns when its code changes. The
# config's defaults live in the settings dataclasses; config/schema.yaml is generated from them.


include: "rules/common.smk"
include: "rules/data.smk"


for _experiment in EXPERIMENTS:  # each experiment's rule file, as its descriptor names it

    include: _experiment.rules


include: "rules/outputs.smk"
include: "rules/report.smk"


if SCALE == "rehearsal":

    include: "rules/rehearsal.smk"


onstart:
    announce_run_time(workflow.cores)
    announce_study(
        SCALE,
        list(SE_RUNS.values()),
        any(job.rule.name.startswith("sensitivity_") for job in workflow.dag.needrun_jobs()),
        workflow.cores,
        f"{REHEARSAL_ESTIMATES}_jobs.csv",
        f"{BENCHMARKS}/sensitivity",
    )


rule all:
    default_target: True
    input:
        FINAL_OUTPUTS,


check_code_params(workflow.rules)
check_targets(workflow.rules)
signal.signal(signal.SIGINT, interrupts.once)  # the workflow is read: Ctrl-C is Snakemake's own
