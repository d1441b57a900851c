"""Table 3 and Figure 6 drawn from raw task-interaction results: the rows, the method names, mean ± std
over trials, the layout, and the flag on outputs made from random (not ImageNet) features."""

import pytest

from truncback.experiments.task_interaction.figure import fig6_task_interaction
from truncback.experiments.task_interaction.run import TaskInteractionResult
from truncback.experiments.task_interaction.table import task_interaction_table
from truncback.hypergrad import display_name, label
from truncback.io.plotting import figure_style, plt
from truncback.runtime.harness import RunRecord

T = 100


def result(dataset, trial, spec, accuracy, iterations, pretrained=True):
    points = list(range(0, iterations, 10)) + [iterations - 1]
    record = RunRecord(
        iterations_run=iterations,
        train={
            "iteration": list(range(iterations)),
            "outer_loss": [1.0 / (1 + i) for i in range(iterations)],
            "hypergradient_norm": [1.0] * iterations,
        },
        exact={
            "iteration": points,
            "grad_norm": [1.0 + i for i in points],
            "cosine": [0.25 * (1 + (spec["name"] == "rmd")) for _ in points],
            "relative_error": [0.5 for _ in points],
        },
        hypergradient_peak_mib=0.1 * spec.get("K", T),
        states_held=spec.get("K", T) + 1,
        state_mib=0.0,
    )
    return TaskInteractionResult(
        method=spec,
        label=label(spec),
        display=display_name(spec, T),
        dataset=dataset,
        trial=trial,
        settings={"T": T, "lr": 0.1, "min_delta": 1e-4, "patience": 500, "max_hyper_iterations": 10000},
        features={
            "pretrained": pretrained,
            "dim": 512,
            "extractor": "ResNet-18 pretrained on ImageNet" if pretrained else "random features",
        },
        sizes={"train": 500, "val": 500, "test": 10000, "classes": 10},
        baseline={"test_acc": {"cifar10": 55.0, "cifar100": 25.0}[dataset] + trial},
        run=record,
        iterations=iterations,
        best_iteration=iterations // 2,
        final={"test_acc": accuracy, "val_acc": accuracy, "train_acc": 100.0, "val_loss": 0.5},
        hparams={},
    )


def trial_runs(dataset, trial, pretrained=True):
    accuracy = {"cifar10": 60.0, "cifar100": 30.0}[dataset] + trial
    return [
        result(dataset, trial, {"name": "krmd", "K": 1}, accuracy, 30 + trial, pretrained),
        result(dataset, trial, {"name": "rmd"}, accuracy + 1, 50 + 10 * trial, pretrained),
    ]


RESULTS = [run for dataset in ("cifar100", "cifar10") for trial in (1, 0) for run in trial_runs(dataset, trial)]
TIMINGS = [{"seconds_per_iteration": 0.01 * r.run.states_held} for r in RESULTS]


def test_table_rows_names_and_statistics():
    frame, caption = task_interaction_table(RESULTS, TIMINGS)
    assert list(frame["Dataset"]) == ["CIFAR-10"] * 3 + ["CIFAR-100"] * 3
    assert list(frame["Method"]) == ["initial λ", "1-RMD", "Full RMD"] * 2
    assert frame.iloc[0]["Avg. Acc."] == "55.50 ± 0.71"  # one initial-lambda accuracy per trial
    cifar10_full = frame.iloc[2]
    assert cifar10_full["Avg. Acc."] == "61.50 ± 0.71"
    assert cifar10_full["Avg. Iter."] == "55"
    assert cifar10_full["States held"] == "101"
    assert cifar10_full["Sec/iter"] == "1.010 ± 0.000"
    assert caption.startswith("Table 3:") and "2 trial(s)" in caption
    assert "NOT an ImageNet" not in caption


def test_outputs_from_random_features_say_so():
    mixed = RESULTS[:-2] + trial_runs("cifar10", 0, pretrained=False)
    _, caption = task_interaction_table(mixed, TIMINGS)
    assert "NOT an ImageNet-pretrained ResNet (reduced scale)" in caption
    with figure_style():
        figure = fig6_task_interaction(mixed)
        assert "NOT an ImageNet-pretrained ResNet" in figure._suptitle.get_text()
        plt.close(figure)


def test_figure_has_a_row_per_dataset_and_a_curve_per_method():
    with figure_style():
        figure = fig6_task_interaction(RESULTS)
        axes = figure.axes
        assert len(axes) == 6
        titles = [axis.get_title() for axis in axes[::3]]
        assert titles == ["CIFAR-10: upper-level loss", "CIFAR-100: upper-level loss"]
        assert all(len(axis.get_lines()) == 2 for axis in axes[:2])
        cosine_curves = [line for line in axes[2].get_lines() if line.get_label() in ("1-RMD", "Full RMD")]
        full_rmd = [list(line.get_ydata()) for line in cosine_curves][1]
        assert full_rmd == pytest.approx([0.5] * 6)  # 50 iterations: exact at 0, 10, ..., 40 and 49
        assert list(axes[0].get_lines()[0].get_xdata()) == list(range(30))  # trial 0, the first trial
        assert "ResNet-18 pretrained on ImageNet" in figure._suptitle.get_text()
        plt.close(figure)
