"""``bench-batched`` (``experiments.complexity.batched``): one row per (case, B) with the seconds per
member one at a time, by the explicit batch (in its cheaper form and in the weights form) and by the
vmap batch, all four timed in the same rounds."""

import csv
import math
import subprocess
import sys

from truncback.experiments.complexity.batched import FIELDS, fastest


def test_the_bench_times_every_way_of_every_case(tmp_path):
    output = tmp_path / "bench.csv"
    command = [sys.executable, "-m", "truncback", "bench-batched", "--members", "1", "2", "--cases", "cifar10"]
    done = subprocess.run(
        [*command, "--T", "2", "--repeats", "1", "--output", str(output)], capture_output=True, text=True, check=True
    )
    with open(output, newline="") as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0])[: len(FIELDS)] == FIELDS  # then what write_csv adds (the code's version)
    assert [(row["case"], row["members"]) for row in rows] == [
        ("task interaction cifar10", "1"),
        ("task interaction cifar10", "2"),
    ]
    for row in rows:
        alone, together, weights, vmap = (float(row[key]) for key in FIELDS[4:6] + FIELDS[7:])
        assert min(alone, together, weights, vmap) > 0 and math.isclose(
            float(row["speed-up"]), alone / together, rel_tol=1e-9
        )
    assert done.stdout.count("vmap batched") == 2


def test_fastest_alternates_the_ways_and_keeps_each_one_s_best_round():
    calls: list[str] = []
    best = fastest([lambda: calls.append("a"), lambda: calls.append("b")], 3)
    assert calls == ["a", "b"] * 4 and len(best) == 2 and all(seconds >= 0 for seconds in best)
