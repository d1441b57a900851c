# The toy problem of sec. 4.1: raw results under results/<scale>/toy/, then Figs. 1-4 drawn from them.
TOY_FIGURES = {
    "fig1_toy_bound": ["landscape.npz", "bound.json"],
    "fig2_toy_descent_ratio": ["trajectories_f.json", "trajectories_f_tilde.json"],
    "fig3_toy_biased_convergence": ["landscape.npz", "trajectories_f_tilde.json", "optimum.json"],
    "fig4_toy_convergence": ["landscape.npz", "trajectories_f.json"],
}
FINAL_OUTPUTS.extend(f"{FIGURES}/{name}.{suffix}" for name in TOY_FIGURES for suffix in ("pdf", "png"))


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


rule toy_figure:
    input:
        lambda wildcards: [f"{TOY_RESULTS}/{name}" for name in TOY_FIGURES[wildcards.figure]],
    output:
        pdf=f"{FIGURES}/{{figure}}.pdf",
        png=report(f"{FIGURES}/{{figure}}.png", caption="captions/toy.rst", category="Toy problem (sec. 4.1)"),
    log:
        f"{LOGS}/toy/{{figure}}.log",
    wildcard_constraints:
        figure=any_of(TOY_FIGURES),
    localrule: True
    resources:
        mem_mb=1000,
        runtime="10m",
    params:
        results=TOY_RESULTS,
        stem=stem("pdf"),
        code=code("figure-toy"),
    shell:
        "python -m truncback figure-toy {wildcards.figure:q} --results-dir {params.results:q}"
        " --output {params.stem:q} > {log:q} 2>&1"
