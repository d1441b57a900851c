"""The AID-vs-ITD companion (Grazzi et al. 2020): its commands, config section, files, table and figure
(the registry reads this; no command imports it)."""

from truncback.experiments.registry import Experiment, Output, ReportInput, Scale, timings

PROBLEMS = ["ridge", "logistic", "hypercleaning"]


def files(scale: Scale) -> dict:
    results = f"{scale.results}/aid_vs_itd"
    return {
        "AID_VS_ITD": scale.config["aid_vs_itd"],
        "AID_RESULTS": results,
        "AID_PROBLEMS": PROBLEMS,
        "AID_RUNS": [f"{results}/{problem}.json" for problem in PROBLEMS],
        "AID_BENCHMARKS": [scale.benchmark("aid_vs_itd", problem) for problem in PROBLEMS],
    }


EXPERIMENT = Experiment(
    name="aid_vs_itd",
    title="AID vs ITD (companion, Grazzi et al. 2020)",
    commands={
        "aid-vs-itd": "truncback.experiments.aid_vs_itd.run",
        "figure-aid-vs-itd": "truncback.experiments.aid_vs_itd.figure",
        "table-aid-vs-itd": "truncback.experiments.aid_vs_itd.table",
    },
    computing=frozenset({"aid-vs-itd"}),
    section="aid_vs_itd",
    settings="truncback.experiments.aid_vs_itd.settings:AidVsItdSettings",
    description="companion: AID vs ITD, hypergradient error against iterations (Grazzi et al. 2020)",
    rules="rules/aid_vs_itd.smk",
    files=files,
    benchmarks="AID_BENCHMARKS",
    report=(ReportInput("aid_vs_itd", lambda files: files["AID_RUNS"], "--aid-vs-itd"),),
    outputs=(
        Output(
            rule="aid_vs_itd_figure",
            kind="figure",
            name="companion_aid_vs_itd",
            also=("time",),  # against seconds
            command="figure-aid-vs-itd",
            arguments="--results {input.results:q} --output {params.stem:q} --time-output {params.time_stem:q}",
            inputs=lambda files: {"results": files["AID_RUNS"], "timings": timings(files["AID_RUNS"])},
            caption="aid_vs_itd.rst",
            log="figure",
        ),
        Output(
            rule="aid_vs_itd_table",
            kind="table",
            name="companion_aid_vs_itd",
            command="table-aid-vs-itd",
            arguments="--results {input.results:q} --output {params.stem:q}",
            inputs=lambda files: {"results": files["AID_RUNS"], "timings": timings(files["AID_RUNS"])},
            caption="aid_vs_itd.rst",
            log="table",
        ),
    ),
)
