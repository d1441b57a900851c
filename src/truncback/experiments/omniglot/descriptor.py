"""One-shot Omniglot (sec. 4.3, Table 4, Fig. 7): its commands, config section, files, table and figure
(the registry reads this; no command imports it)."""

from truncback.experiments.registry import Experiment, Output, ReportInput, Scale, timings, unique_labels


def files(scale: Scale) -> dict:
    """Table 4's runs and the FOM-vs-UFOM companion's, by label."""
    from truncback.experiments.omniglot.settings import OmniglotRun, every_run

    section = scale.config["omniglot"]
    results = f"{scale.results}/omniglot"
    entries = dict(zip(scale.labels["omniglot"], map(OmniglotRun.from_dict, every_run(section))))
    return {
        "OMNIGLOT": section,
        "OG_RESULTS": results,
        "OG_DATA": {part: scale.prepared(f"omniglot_{part}") for part in ("background", "evaluation")},
        "OG_ENTRIES": entries,
        "OG_ALL_RUNS": [f"{results}/{name}.json" for name in entries],
        "OG_RUNS": [f"{results}/{name}.json" for name in entries if name not in scale.labels["omniglot_companion"]],
        "OG_COMPANION_RUNS": [f"{results}/{name}.json" for name in scale.labels["omniglot_companion"]],
        "OG_DEPTH": f"{results}/depth.json",
        "OG_BENCHMARKS": [scale.benchmark("omniglot", name) for name in entries]
        + [scale.benchmark("omniglot", "depth")],
    }


def labels(config: dict) -> dict:
    """Its runs' names (Table 4's, then the companion's), each run checked against the settings, and
    depth_from among them."""
    from truncback.experiments.omniglot.settings import RUN_KEYS, OmniglotRun, OmniglotSettings

    section = config["omniglot"]
    settings = OmniglotSettings.from_dict(section.get("settings", {}))
    names = []
    for key in RUN_KEYS:
        for index, values in enumerate(section[key]):
            try:
                names.append(OmniglotRun.from_dict(values).checked(settings).name(settings))
            except ValueError as error:
                raise ValueError(f"config omniglot.{key}[{index}] = {values}: {error}") from None
    unique_labels(names, "config omniglot.runs and companion_runs")
    if section["depth_from"] not in names:
        raise ValueError(
            f"config omniglot.depth_from={section['depth_from']!r} is not the label of a run; the runs: {names}"
        )
    return {"omniglot": names, "omniglot_companion": names[len(section["runs"]) :]}


EXPERIMENT = Experiment(
    name="omniglot",
    title="One-shot Omniglot (sec. 4.3)",
    commands={
        "omniglot": "truncback.experiments.omniglot.run",
        "omniglot-depth": "truncback.experiments.omniglot.depth",
        "table-omniglot": "truncback.experiments.omniglot.table",
        "figure-omniglot": "truncback.experiments.omniglot.figure",
    },
    computing=frozenset({"omniglot", "omniglot-depth"}),
    section="omniglot",
    settings="truncback.experiments.omniglot.settings:OmniglotSection",
    description="one-shot Omniglot meta-learning of sec. 4.3 (Table 4, Fig. 7)",
    rules="rules/omniglot.smk",
    files=files,
    labels=labels,
    benchmarks="OG_BENCHMARKS",
    report=(
        ReportInput("omniglot", lambda files: files["OG_RUNS"], "--omniglot"),
        ReportInput("timings", lambda files: timings(files["OG_RUNS"])),
        ReportInput("depth", lambda files: [files["OG_DEPTH"]], "--depth"),
        ReportInput("omniglot_companion", lambda files: files["OG_COMPANION_RUNS"], "--omniglot-companion"),
    ),
    outputs=(
        Output(
            rule="omniglot_table",
            kind="table",
            name="table4_omniglot",
            command="table-omniglot",
            arguments="--results {input.results:q} --output {params.stem:q}",
            inputs=lambda files: {"results": files["OG_RUNS"], "timings": timings(files["OG_RUNS"])},
            caption="table4.rst",
            log="table4",
        ),
        Output(
            rule="omniglot_figure",
            kind="figure",
            name="fig7_omniglot",
            command="figure-omniglot",
            arguments="--results {input.runs:q} --depth {input.depth:q} --output {params.stem:q}",
            inputs=lambda files: {"runs": files["OG_RUNS"], "depth": files["OG_DEPTH"]},
            caption="omniglot.rst",
            log="fig7",
        ),
    ),
)
