"""The determinism helpers: seeds that depend only on what a run is, NPZ files and figures without
time stamps, and torch set up from the config's thread count."""

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from truncback.runtime.determinism import FIXED_ZIP_TIME, configure_torch, derive_seed, write_npz
from truncback.io.plotting import figure_style, plt, save_figure


def test_seeds_depend_on_experiment_K_and_index_only():
    assert derive_seed("toy", 1, 0) == derive_seed("toy", 1, 0) == 614326574
    assert (
        len(
            {
                derive_seed("toy", 1, 0),
                derive_seed("toy", 2, 0),
                derive_seed("toy", 1, 1),
                derive_seed("hypercleaning", 1, 0),
            }
        )
        == 4
    )
    assert 0 <= derive_seed("x", 100, 9) < 2**31


def test_npz_has_fixed_time_stamps_and_round_trips(tmp_path):
    arrays = {"b": np.arange(6.0).reshape(2, 3), "a": np.array([1, 2], dtype=np.int64)}
    first = write_npz(tmp_path / "1.npz", **arrays)
    second = write_npz(tmp_path / "2.npz", **dict(reversed(arrays.items())))
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert [info.filename for info in archive.infolist()] == ["a.npy", "b.npy"]
        assert {info.date_time for info in archive.infolist()} == {FIXED_ZIP_TIME}
    with np.load(first) as loaded:
        for name, array in arrays.items():
            np.testing.assert_array_equal(loaded[name], array)
            assert loaded[name].dtype == array.dtype


def draw():
    with figure_style():
        figure, axis = plt.subplots(figsize=(3, 2))
        axis.semilogy([1, 2, 3], [1e-1, 1e-3, 1e-6], label=r"$\|h_{T-K} - d_\lambda f\|$")
        axis.legend()
    return figure


def test_saved_figures_carry_no_time_stamp_and_repeat_byte_for_byte(tmp_path):
    first = save_figure(draw(), tmp_path / "one" / "figure")
    second = save_figure(draw(), tmp_path / "two" / "figure")
    assert [path.name for path in first] == ["figure.pdf", "figure.png"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()
    assert b"CreationDate" not in first[0].read_bytes()
    assert "Software" not in Image.open(first[1]).info


def test_torch_configuration_sets_threads_and_deterministic_algorithms():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        configure_torch(1)
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    with pytest.raises(ValueError, match="threads must be a positive int"):
        configure_torch(0)
