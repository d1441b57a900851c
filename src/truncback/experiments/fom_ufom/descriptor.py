"""The FOM-vs-UFOM companion (Likhosherstov et al. 2021): its commands, config section, files, tables and
figure (the registry reads this; no command imports it). Its Omniglot runs are the omniglot experiment's
(omniglot.companion_runs)."""

from truncback.experiments.registry import Experiment, Output, ReportInput, Scale, timings

PARTS = ["paths", "estimator"]
TABLES = {"paths": "paths", "estimator": "estimator", "memory": "estimator"}
"""Each table and the part whose result it reads."""


def files(scale: Scale) -> dict:
    """Its parts, and the Omniglot runs beside 1-RMD and full RMD."""
    results = f"{scale.results}/fom_ufom"
    return {
        "FOM_UFOM": scale.config["fom_ufom"],
        "FU_RESULTS": results,
        "FU_PARTS": PARTS,
        "FU_RUNS": [f"{results}/{part}.json" for part in PARTS],
        "FU_OMNIGLOT": [
            f"{scale.known['OG_RESULTS']}/{name}.json"
            for name in scale.known["OG_ENTRIES"]
            if name in ("krmd-K1", "rmd") or name in scale.labels["omniglot_companion"]
        ],
        "FU_BENCHMARKS": [scale.benchmark("fom_ufom", part) for part in PARTS],
    }


EXPERIMENT = Experiment(
    name="fom_ufom",
    title="FOM vs UFOM (companion, Likhosherstov et al. 2021)",
    commands={
        "fom-ufom": "truncback.experiments.fom_ufom.run",
        "figure-fom-ufom": "truncback.experiments.fom_ufom.figure",
        "table-fom-ufom": "truncback.experiments.fom_ufom.table",
    },
    computing=frozenset({"fom-ufom"}),
    section="fom_ufom",
    settings="truncback.experiments.fom_ufom.settings:FomUfomSettings",
    description="companion: FOM vs UFOM on a task family where FOM does not converge (Likhosherstov et al. 2021)",
    rules="rules/fom_ufom.smk",
    files=files,
    benchmarks="FU_BENCHMARKS",
    report=(ReportInput("fom_ufom", lambda files: files["FU_RUNS"], "--fom-ufom"),),
    outputs=(
        Output(
            rule="fom_ufom_figure",
            kind="figure",
            name="companion_fom_ufom",
            command="figure-fom-ufom",
            arguments="--paths {input.paths:q} --estimator {input.estimator:q} --output {params.stem:q}",
            inputs=lambda files: {part: f"{files['FU_RESULTS']}/{part}.json" for part in PARTS},
            caption="fom_ufom.rst",
            log="figure",
        ),
        Output(
            rule="fom_ufom_table",
            kind="table",
            name="companion_fom_ufom_{table}",
            wildcard="table",
            values=lambda files: list(TABLES),
            command="table-fom-ufom",
            arguments="{wildcards.table:q} --results {input.result:q} --output {params.stem:q}",
            inputs=lambda files, table: {
                "result": f"{files['FU_RESULTS']}/{TABLES[table]}.json",
                "timing": f"{files['FU_RESULTS']}/{TABLES[table]}.timing.json",
            },
            caption="fom_ufom.rst",
            log="table_{table}",
        ),
        Output(
            rule="fom_ufom_omniglot_table",
            kind="table",
            name="companion_fom_ufom_omniglot",
            command="table-omniglot",
            arguments="--results {input.results:q} --output {params.stem:q}",
            inputs=lambda files: {"results": files["FU_OMNIGLOT"], "timings": timings(files["FU_OMNIGLOT"])},
            caption="fom_ufom.rst",
            log="table_omniglot",
        ),
    ),
)
