"""The toy problem of sec. 4.1 (Figs. 1-4): its commands, config section, files and figures (the registry
reads this; no command imports it)."""

from truncback.experiments.registry import Experiment, Output, ReportInput, Scale

FIGURES = {
    "fig1_toy_bound": ["landscape.npz", "bound.json"],
    "fig2_toy_descent_ratio": ["trajectories_f.json", "trajectories_f_tilde.json"],
    "fig3_toy_biased_convergence": ["landscape.npz", "trajectories_f_tilde.json", "optimum.json"],
    "fig4_toy_convergence": ["landscape.npz", "trajectories_f.json"],
}
"""Each figure and the raw results it is drawn from."""


def files(scale: Scale) -> dict:
    results = f"{scale.results}/toy"
    objectives = ["f", "f_tilde"]
    return {
        "TOY": scale.config["toy"],
        "TOY_RESULTS": results,
        "TOY_REFERENCE": {name: f"{results}/{name}" for name in ("landscape.npz", "bound.json", "optimum.json")},
        "TOY_OBJECTIVES": objectives,
        "TOY_TRAJECTORIES": [f"{results}/trajectories_{objective}.json" for objective in objectives],
        "TOY_BENCHMARKS": [scale.benchmark("toy", "reference")]
        + [scale.benchmark("toy", f"trajectories_{objective}") for objective in objectives],
    }


EXPERIMENT = Experiment(
    name="toy",
    title="Toy problem (sec. 4.1)",
    commands={"toy": "truncback.experiments.toy.run", "figure-toy": "truncback.experiments.toy.figure"},
    computing=frozenset({"toy"}),
    section="toy",
    settings="truncback.experiments.toy.settings:ToySettings",
    description="the toy problem of sec. 4.1 (Figs. 1-4)",
    rules="rules/toy.smk",
    files=files,
    benchmarks="TOY_BENCHMARKS",
    report=(
        ReportInput(
            "toy",
            lambda files: [
                files["TOY_REFERENCE"]["bound.json"],
                files["TOY_REFERENCE"]["optimum.json"],
                *files["TOY_TRAJECTORIES"],
            ],
            "--toy-dir",
            folder=True,
        ),
    ),
    outputs=(
        Output(
            rule="toy_figure",
            kind="figure",
            name="{figure}",
            wildcard="figure",
            values=lambda files: list(FIGURES),
            command="figure-toy",
            arguments="{wildcards.figure:q} --results-dir {params.results:q} --output {params.stem:q}",
            inputs=lambda files, figure: [f"{files['TOY_RESULTS']}/{name}" for name in FIGURES[figure]],
            params=lambda files: {"results": files["TOY_RESULTS"]},
            caption="toy.rst",
            log="{figure}",
        ),
    ),
)
