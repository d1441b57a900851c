"""Data hypercleaning (sec. 4.2.1, Table 2, Fig. 5): its commands, config section, files, table and figure
(the registry reads this; no command imports it)."""

from truncback.experiments.registry import Experiment, Output, ReportInput, Scale, method_labels, timings


def files(scale: Scale) -> dict:
    """One run per (method, seed), named by the method's label."""
    section = scale.config["hypercleaning"]
    results = f"{scale.results}/hypercleaning"
    specs = dict(zip(scale.labels["hypercleaning"], section["methods"]))
    jobs = [f"{method}_seed{seed}" for method in specs for seed in section["seeds"]]
    return {
        "HYPERCLEANING": section,
        "HC_RESULTS": results,
        "HC_DATA": scale.prepared(section["dataset"]),
        "HC_SPECS": specs,
        "HC_JOBS": jobs,
        "HC_RUNS": [f"{results}/{job}.json" for job in jobs],
        "HC_BENCHMARKS": [scale.benchmark("hypercleaning", job) for job in jobs],
    }


def labels(config: dict) -> dict:
    """Its method specs' labels, each spec resolved against the section's T."""
    from truncback.experiments.hypercleaning.settings import HypercleaningSettings

    section = config["hypercleaning"]
    T = HypercleaningSettings.from_dict(section.get("settings", {})).T
    return {"hypercleaning": method_labels(section["methods"], T, "hypercleaning")}


EXPERIMENT = Experiment(
    name="hypercleaning",
    title="Data hypercleaning (sec. 4.2.1)",
    commands={
        "hypercleaning": "truncback.experiments.hypercleaning.run",
        "table-hypercleaning": "truncback.experiments.hypercleaning.table",
        "figure-hypercleaning": "truncback.experiments.hypercleaning.figure",
    },
    computing=frozenset({"hypercleaning"}),
    section="hypercleaning",
    settings="truncback.experiments.hypercleaning.settings:HypercleaningSection",
    description="data hypercleaning on MNIST (sec. 4.2.1, Table 2, Fig. 5)",
    rules="rules/hypercleaning.smk",
    files=files,
    labels=labels,
    benchmarks="HC_BENCHMARKS",
    report=(
        ReportInput("hypercleaning", lambda files: files["HC_RUNS"], "--hypercleaning"),
        ReportInput("timings", lambda files: timings(files["HC_RUNS"])),
    ),
    outputs=(
        Output(
            rule="hypercleaning_table",
            kind="table",
            name="table2_hypercleaning",
            command="table-hypercleaning",
            arguments="--results {input.results:q} --output {params.stem:q}",
            inputs=lambda files: {"results": files["HC_RUNS"], "timings": timings(files["HC_RUNS"])},
            caption="table2.rst",
            log="table2",
        ),
        Output(
            rule="hypercleaning_figure",
            kind="figure",
            name="fig5_hypercleaning_gradnorm",
            command="figure-hypercleaning",
            arguments="--results {input:q} --output {params.stem:q}",
            inputs=lambda files: files["HC_RUNS"],
            caption="hypercleaning.rst",
            log="fig5",
        ),
    ),
)
