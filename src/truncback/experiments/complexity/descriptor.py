"""Table 1 (complexity): its commands, config section, files and tables (the registry reads this; no
command imports it)."""

from truncback.experiments.registry import Experiment, Output, ReportInput, Scale, method_labels


def files(scale: Scale) -> dict:
    results = f"{scale.results}/complexity"
    return {
        "COMPLEXITY": scale.config["complexity"],
        "CX_RESULTS": results,
        "CX_MEASUREMENTS": f"{results}/measurements.csv",
        "CX_BENCHMARKS": [scale.benchmark("complexity", job) for job in ("measure", "baselines")],
    }


def labels(config: dict) -> dict:
    """Its method specs' labels, each resolved against the smallest T it is measured at."""
    section = config["complexity"]
    return {
        "complexity": method_labels(
            section["methods"], min(section["T_values"]), "complexity", " (the smallest of T_values)"
        )
    }


EXPERIMENT = Experiment(
    name="complexity",
    title="Complexity (Table 1)",
    commands={
        "bench-methods": "truncback.experiments.complexity.benchmark",
        "bench-baselines": "truncback.experiments.complexity.baselines",
        "bench-products": "truncback.experiments.complexity.products",
        "bench-batched": "truncback.experiments.complexity.batched",
        "table-complexity": "truncback.experiments.complexity.table",
        "table-baselines": "truncback.experiments.complexity.baselines_table",
    },
    computing=frozenset({"bench-methods", "bench-baselines"}),
    section="complexity",
    settings="truncback.experiments.complexity.settings:ComplexitySection",
    description="Table 1: time and memory of every method against T (the benchmark)",
    rules="rules/complexity.smk",
    files=files,
    labels=labels,
    benchmarks="CX_BENCHMARKS",
    report=(ReportInput("complexity", lambda files: [files["CX_MEASUREMENTS"]], "--complexity"),),
    outputs=(
        Output(
            rule="complexity_table",
            kind="table",
            name="table1_complexity",
            command="table-complexity",
            arguments="--measurements {input:q} --n-train {params.n_train:q} --output {params.stem:q}",
            inputs=lambda files: [files["CX_MEASUREMENTS"]],
            params=lambda files: {"n_train": files["COMPLEXITY"]["n_train"]},
            caption="complexity.rst",
            log="table1",
        ),
        Output(
            rule="complexity_baselines_table",
            kind="table",
            name="table1_baselines",
            command="table-baselines",
            arguments="--results {input:q} --output {params.stem:q}",
            inputs=lambda files: [f"{files['CX_RESULTS']}/baselines.csv"],
            caption="complexity_baselines.rst",
            log="table1_baselines",
        ),
    ),
)
