# AID against ITD (Grazzi et al., ICML 2020), a companion experiment: one job per problem under
# results/<scale>/aid_vs_itd/; the figure (error against iterations; a second file against seconds) and
# the iterations-to-tolerance table, drawn from those raw results only, are its descriptor's outputs
# (rules/outputs.smk).


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
