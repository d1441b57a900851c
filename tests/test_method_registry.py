"""A method is one entry of ``METHODS`` with its metadata: a method registered here, through
``register``, appears in the config schema, the benchmark's case list (and is measured), Table 1 and
the guide's method table (docs/choosing.md) with nothing else edited; and Table 1's paper columns are
the committed ones, now read from the metadata."""

import jsonschema
import pandas as pd
import pytest
import yaml

from truncback.experiments.complexity import benchmark
from truncback.experiments.complexity.settings import ComplexitySection
from truncback.experiments.complexity.table import complexity_table
from truncback.hypergrad import METHODS, Bench, Cost, Method, Option, fom, register, resolve
from truncback.tools.config_schema import schema_text
from truncback.tools.docs import Committed, method_choice
from workflow_copy import REPO


def fake(problem, hparams, *, alpha: float, return_info: bool = False):
    """FOM under another name, with an option the benchmark must be told a value of."""
    return fom(problem, hparams, return_info=return_info)


FAKE = Method(
    "fake",
    fake,
    "Fake (alpha={alpha})",
    (Option("alpha", float, "how fake it is", minimum=0.0),),
    exactness="approximate",
    cost=Cost("O(c(T + alpha))", "O(M alpha)", 0.0, "this test"),
    bench=Bench(options={"alpha": 0.5}, note="measured at alpha = 0.5"),
    guide_exact="no (a test's method)",
    guide_needs="a test to run it",
)


@pytest.fixture
def fake_method(monkeypatch):
    """FAKE registered through ``register``; monkeypatch removes it from ``METHODS`` at teardown (the
    setitem records that the name was free, the entry is then left to ``register`` to make)."""
    monkeypatch.setitem(METHODS, FAKE.name, FAKE)
    del METHODS[FAKE.name]
    return register(FAKE)


def test_a_registered_method_is_in_the_generated_config_schema(fake_method):
    method_schema = yaml.safe_load(schema_text())["$defs"]["method"]
    assert "fake" in method_schema["properties"]["name"]["enum"]
    (rule,) = [rule for rule in method_schema["allOf"] if rule["if"]["properties"]["name"]["const"] == "fake"]
    assert rule["then"]["required"] == ["name", "alpha"]
    assert rule["then"]["properties"]["alpha"] == {"type": "number", "description": "how fake it is", "minimum": 0.0}
    jsonschema.validate({"name": "fake", "alpha": 0.5}, method_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "fake"}, method_schema)


def test_a_registered_method_is_benchmarked_and_in_table_1(fake_method):
    listed = [case for case in benchmark.cases(benchmark.QUICK_GRID, ["hypercleaning"]) if case.method == "fake"]
    assert [(case.T, case.label) for case in listed] == [(T, "fake-alpha0.5") for T in benchmark.QUICK_GRID["T"]]

    measured = [benchmark.run_case(benchmark.Case("hypercleaning", "fake", T, None)) for T in (3, 6)]
    for case in measured:
        assert case.seconds > 0 and case.peak_mib > 0 and case.states_held >= 1
        assert case.note == "measured at alpha = 0.5"
    rows = [
        {**{key: getattr(case, key) for key in benchmark.CSV_FIELDS}, "label": case.label, "n_train": 5000}
        for case in measured
    ]
    table, _ = complexity_table(pd.DataFrame(rows))
    (row,) = table.to_dict("records")
    assert (row["Method"], row["Paper time"], row["Paper memory"], row["Source"]) == (
        "Fake (alpha=0.5)",
        "O(c(T + alpha))",
        "O(M alpha)",
        "this test",
    )
    assert row["Expected memory exponent"] == "0.00"


def test_a_registered_method_is_in_the_guide_s_method_table(fake_method, tmp_path):
    """Unmeasured, it comes after Table 1's rows with "-"; measured (a Table 1 with its row), its row
    carries its spec and the quick table's numbers."""
    guide = method_choice(Committed(REPO)).splitlines()
    assert guide[-1] == "| Fake (alpha=alpha) | `fake` | no (a test's method) | a test to run it | - | - | - |"

    table = pd.read_csv(REPO / "paper_tables/quick/table1_complexity.csv", dtype=str)
    table.loc[len(table)] = {**table.iloc[0].to_dict(), "Method": "Fake (alpha=0.5)"}
    (tmp_path / "paper_tables/quick").mkdir(parents=True)
    table.to_csv(tmp_path / "paper_tables/quick/table1_complexity.csv", index=False)
    guide = method_choice(Committed(tmp_path)).splitlines()
    (row,) = [line for line in guide if line.startswith("| Fake")]
    assert row.startswith("| Fake (alpha=0.5) | `fake, alpha=0.5` | no (a test's method) | a test to run it | ")
    first = table.iloc[0]  # the row copied above: the fake row shows its numbers at the largest T
    numbers = " | ".join(first[column] for column in ("Time @ T=400 (s)", "Peak MiB @ T=400", "States held @ T=400"))
    assert row.endswith(f" | {numbers} |")


def test_register_refuses_a_taken_name_and_missing_metadata(fake_method):
    with pytest.raises(ValueError, match="already registered"):
        register(FAKE)
    for broken, message in [
        (Method("fake_two", fake, "F", exactness="wrong", cost=FAKE.cost, guide_exact="x", guide_needs="y"), "wrong"),
        (Method("fake_two", fake, "F", exactness="truncated", cost=FAKE.cost, guide_exact="x", guide_needs="y"), "K"),
        (Method("fake_two", fake, "F", exactness="random", cost=FAKE.cost, guide_exact="x", guide_needs="y"), "random"),
        (Method("fake_two", fake, "F", cost=FAKE.cost, guide_exact="x"), "guide_needs"),
    ]:
        with pytest.raises(ValueError, match=message):
            register(broken)
    assert "fake_two" not in METHODS
    with pytest.raises(TypeError, match="cost"):
        Method("fake_two", fake, "F", guide_exact="x", guide_needs="y")  # Table 1 needs its cost


def test_table_1_paper_columns_are_the_committed_ones():
    """The cost moved from table.py's own map to ``METHODS``: Table 1 of the config's methods shows,
    row for row, the strings of the committed quick-scale table."""
    specs = [resolve(spec) for spec in ComplexitySection().methods]
    rows = [
        {**{key: getattr(case, key) for key in benchmark.CSV_FIELDS}, "seconds": 1.0, "peak_mib": 1.0, "states_held": 1}
        | {"label": case.label, "n_train": 5000}
        for case in benchmark.cases({"T": (50, 100, 200, 400)}, ["hypercleaning"], specs, 5000)
    ]
    table, _ = complexity_table(pd.DataFrame(rows))
    columns = ["Method", "Paper time", "Paper memory", "Source", "Expected memory exponent"]
    committed = pd.read_csv(REPO / "paper_tables/quick/table1_complexity.csv", dtype=str)
    assert table[columns].to_dict("records") == committed[columns].to_dict("records")
