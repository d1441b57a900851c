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


def test_the_profile_counts_each_product_kernel_s_multiply_adds_from_its_operands_and_nothing_else():
    import torch

    from truncback.experiments.complexity.floor import profile_products

    a, b = torch.ones(3, 4, 5), torch.ones(3, 5, 6)
    bias, m, n = torch.ones(3, 4, 6), torch.ones(4, 5), torch.ones(5, 6)

    def work():
        torch.bmm(a, b)  # 3 * 4 * 5 * 6 = 360
        torch.baddbmm(bias, a, b)  # 360
        torch.mm(m, n)  # 4 * 5 * 6 = 120
        torch.addmm(torch.ones(6), m, n)  # 120
        (a + 1).exp().sum()  # no product

    found = profile_products(work)
    assert found.multiply_adds == 960 and 0 < found.seconds < found.wall


def test_the_floors_scale_only_the_hypergradients_part_of_each_estimate():
    import pandas as pd

    from truncback.experiments.complexity.floor import Products, floors

    frame = pd.DataFrame(
        [
            {"job": "cifar10_rmd", "estimate s": 100.0, "s/hypergradient": 0.8, "iterations": 100},
            {"job": "features_cifar10", "estimate s": 7.0, "s/hypergradient": float("nan"), "iterations": None},
        ]
    )
    # products take 0.4 s of the 0.8 s profiled call; their 2e9 multiply-adds at 1e10 a second would take 0.2 s
    measured = {"cifar10_rmd": {"seconds": 0.7, "products": Products(0.8, 0.4, 2_000_000_000)}}
    table = floors(frame, measured, 1e10).set_index("job")
    assert table.loc["cifar10_rmd", "products alone s"] == 20 + 80 * 0.5
    assert table.loc["cifar10_rmd", "large-product rate s"] == 20 + 80 * 0.25
    assert (
        table.loc["features_cifar10", "products alone s"] == table.loc["features_cifar10", "large-product rate s"] == 7
    )


def test_the_floor_command_writes_its_page_and_refuses_estimates_without_its_jobs(tmp_path):
    estimates = tmp_path / "full_run_estimates_jobs.csv"
    columns = "experiment,job,s/hypergradient,iterations,estimate s,note\n"
    estimates.write_text(
        columns
        + "task_interaction,cifar10_krmd-K1,0.1,10,1.5,2 runs batched: x\ntask_interaction,features_cifar10,,,3,\n"
    )
    output = tmp_path / "floor.md"
    command = [sys.executable, "-m", "truncback.experiments.complexity.floor", "--estimates", str(estimates)]
    command += ["--members", "2", "--T", "2", "--repeats", "1", "--output", str(output)]
    subprocess.run(command, capture_output=True, text=True, check=True)
    text = output.read_text()
    assert "| cifar10_krmd-K1 " in text and "| features_cifar10 " in text
    assert "| the rehearsal's estimate | 0.00 |" in text  # 4.5 s

    estimates.write_text(columns + "hypercleaning,krmd-K1_seed0,0.1,10,1.5,\n")
    output.unlink()
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and f"{estimates}: no task_interaction rows" in refused.stderr
    assert not output.exists()
