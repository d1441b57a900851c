"""The sensitivity study: its commands, config section and files (the registry reads this; no command
imports it). Run on request (`snakemake sensitivity`), so rule all does not ask for its tables and figures
and the report does not read its benchmark files; its rules are in rules/sensitivity.smk."""

from truncback.experiments.registry import Experiment, ReportInput, Scale


def files(scale: Scale) -> dict:
    """Its runs by job, <part>/<variant>/<label>_seed<seed>, under results/<scale>/sensitivity/."""
    from truncback.experiments.sensitivity.settings import study_runs

    results = f"{scale.results}/sensitivity"
    return {
        "SENSITIVITY": scale.config["sensitivity"],
        "SE_RESULTS": results,
        "SE_RUNS": {run.job: run for run in study_runs(scale.config)},
        "SE_SUMMARY": f"{results}/summary.json",
    }


def labels(config: dict) -> dict:
    """Its runs' jobs, each variant checked against its settings."""
    from truncback.experiments.sensitivity.settings import study_runs

    return {"sensitivity": [run.job for run in study_runs(config)]}


EXPERIMENT = Experiment(
    name="sensitivity",
    title="Sensitivity study",
    commands={
        "sensitivity-pool": "truncback.experiments.sensitivity.pools",
        "sensitivity-summary": "truncback.experiments.sensitivity.summary",
        "table-sensitivity": "truncback.experiments.sensitivity.table",
        "figure-sensitivity": "truncback.experiments.sensitivity.figure",
    },
    section="sensitivity",
    settings="truncback.experiments.sensitivity.settings:SensitivitySection",
    description="the open choices and the meta-training data, measured (Tables 2 and 4, C4): run on request "
    "(`snakemake sensitivity`), not by rule all",
    rules="rules/sensitivity.smk",
    files=files,
    labels=labels,
    report=(ReportInput("sensitivity", lambda files: [files["SE_SUMMARY"]], "--sensitivity", present=True),),
)
