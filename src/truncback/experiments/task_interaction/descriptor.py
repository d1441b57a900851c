"""Task interaction (sec. 4.2.2, Table 3, Fig. 6): its commands, config section, files, table and figure
(the registry reads this; no command imports it)."""

from truncback.experiments.registry import Experiment, Output, ReportInput, Scale, method_labels, timings


def files(scale: Scale) -> dict:
    """Features once per dataset, one run per (dataset, trial, method), one job each, or with batch_trials
    the trials of a (dataset, method) batched in one job (its benchmark file)."""
    from truncback.data import layout, sources

    section = scale.config["task_interaction"]
    results = f"{scale.results}/task_interaction"
    datasets = section["datasets"]
    specs = dict(zip(scale.labels["task_interaction"], section["methods"]))
    trials = list(range(section["trials"]))
    jobs = [(dataset, f"trial{trial}_{method}") for dataset in datasets for trial in trials for method in specs]
    batched = section["batch_trials"]  # one job per (dataset, method), else one per (dataset, trial, method)
    weights = sources.archive("resnet18_weights")
    return {
        "TASK_INTERACTION": section,
        "TI_RESULTS": results,
        "TI_DATASETS": datasets,
        "TI_SPECS": specs,
        "TI_TRIALS": trials,
        "TI_JOBS": jobs,
        "TI_RUNS": [f"{results}/{dataset}/{job}.json" for dataset, job in jobs],
        "TI_FEATURE_TIMINGS": [f"{results}/features/{dataset}.timing.json" for dataset in datasets],
        "TI_BATCHED": batched,
        "TI_BENCHMARKS": (
            [
                scale.benchmark("task_interaction", f"{dataset}_{method}")
                for dataset in datasets
                for method in specs
                if batched
            ]
            + [scale.benchmark("task_interaction", f"{dataset}_{job}") for dataset, job in jobs if not batched]
            + [scale.benchmark("task_interaction", f"features_{dataset}") for dataset in datasets]
        ),
        "TI_WEIGHTS": (  # torchvision's file at full scale, its seeded stand-in in the rehearsal
            [str(layout.source_path(scale.scale, sources.extra_archive_origin(scale.scale, weights.key), weights))]
            if section["features"]["extractor"] == "resnet18"
            else []
        ),
    }


def labels(config: dict) -> dict:
    """Its method specs' labels, each spec resolved against the section's T."""
    from truncback.experiments.task_interaction.settings import TaskInteractionSettings

    section = config["task_interaction"]
    T = TaskInteractionSettings.from_dict(section.get("settings", {})).T
    return {"task_interaction": method_labels(section["methods"], T, "task_interaction")}


EXPERIMENT = Experiment(
    name="task_interaction",
    title="Task interaction (sec. 4.2.2)",
    commands={
        "features": "truncback.experiments.task_interaction.features",
        "task-interaction": "truncback.experiments.task_interaction.run",
        "task-interaction-trials": "truncback.experiments.task_interaction.trials",
        "table-task-interaction": "truncback.experiments.task_interaction.table",
        "figure-task-interaction": "truncback.experiments.task_interaction.figure",
    },
    computing=frozenset({"features", "task-interaction", "task-interaction-trials"}),
    section="task_interaction",
    settings="truncback.experiments.task_interaction.settings:TaskInteractionSection",
    description="task interaction on CIFAR-10 and CIFAR-100 (sec. 4.2.2, Table 3, Fig. 6)",
    rules="rules/task_interaction.smk",
    files=files,
    labels=labels,
    benchmarks="TI_BENCHMARKS",
    report=(
        ReportInput("task_interaction", lambda files: files["TI_RUNS"], "--task-interaction"),
        ReportInput("timings", lambda files: timings(files["TI_RUNS"])),
    ),
    outputs=(
        Output(
            rule="task_interaction_table",
            kind="table",
            name="table3_task_interaction",
            command="table-task-interaction",
            arguments="--results {input.results:q} --output {params.stem:q}",
            inputs=lambda files: {"results": files["TI_RUNS"], "timings": timings(files["TI_RUNS"])},
            caption="table3.rst",
            log="table3",
        ),
        Output(
            rule="task_interaction_figure",
            kind="figure",
            name="fig6_task_interaction",
            command="figure-task-interaction",
            arguments="--results {input:q} --output {params.stem:q}",
            inputs=lambda files: files["TI_RUNS"],
            caption="task_interaction.rst",
            log="fig6",
        ),
    ),
    in_all=lambda files: bool(files["TI_DATASETS"]),  # a scale without its datasets (offline: no CIFAR) leaves it out
)
