# The toy problem of sec. 4.1: raw results under results/<scale>/toy/; Figs. 1-4, drawn from them, are its
# descriptor's outputs (rules/outputs.smk).


rule toy_reference:
    output:
        landscape=TOY_REFERENCE["landscape.npz"],
        bound=TOY_REFERENCE["bound.json"],
        optimum=TOY_REFERENCE["optimum.json"],
    log:
        f"{LOGS}/toy/reference.log",
    benchmark:
        benchmark("toy", "reference")
    threads: THREADS
    resources:
        mem_mb=1000,
        runtime="30m",
    params:
        settings=json.dumps(TOY, sort_keys=True),
        torch_threads=THREADS,
        code=code("toy"),
        torch=TORCH,
    shell:
        "python -m truncback toy reference --settings {params.settings:q} --threads {params.torch_threads:q}"
        " --landscape {output.landscape:q} --bound {output.bound:q} --optimum {output.optimum:q} --log {log:q}"


rule toy_trajectories:
    output:
        f"{TOY_RESULTS}/trajectories_{{objective}}.json",
    log:
        f"{LOGS}/toy/trajectories_{{objective}}.log",
    benchmark:
        benchmark("toy", "trajectories_{objective}")
    wildcard_constraints:
        objective=any_of(TOY_OBJECTIVES),
    threads: THREADS
    resources:
        mem_mb=1000,
        runtime="30m",
    params:
        settings=json.dumps(TOY, sort_keys=True),
        torch_threads=THREADS,
        code=code("toy"),
        torch=TORCH,
    shell:
        "python -m truncback toy trajectories --objective {wildcards.objective:q} --settings {params.settings:q}"
        " --threads {params.torch_threads:q} --output {output:q} --log {log:q}"
