"""Datasets: download (or take from a data_dir), verify, parse and prepare MNIST, CIFAR-10,
CIFAR-100 and Omniglot; seeded format-faithful fixtures for the smoke scale.

Paths (relative to the project root; ``data/`` is git-ignored):

- ``data/raw/<group>/<filename>`` - real archives, downloaded with ``data-fetch``; with
  ``--config data_dir=DIR`` they are instead verified copies of files of DIR, found at
  ``DIR/<group>/<filename>`` or ``DIR/<filename>``, and the network is never touched.
- ``data/fixtures/<scale>/<group>/<filename>`` - synthetic stand-ins (same names and formats),
  written by ``data-fixtures`` from ``data.fixture_seed``.
- ``data/prepared/<scale>/<name>.npz`` - arrays, written once by ``data-prepare``.

Groups and file names: ``mnist/`` train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; ``cifar10/`` cifar-10-python.tar.gz;
``cifar100/`` cifar-100-python.tar.gz; ``omniglot/`` images_background.zip, images_evaluation.zip,
images_background_small1.zip, images_background_small2.zip.

Prepared datasets per scale (``sources.RECIPES``):

- full: mnist_train, mnist_test, cifar10_train, cifar10_test, cifar100_train, cifar100_test,
  omniglot_background, omniglot_evaluation - all from the real archives;
- quick: mnist_test (real t10k files only; experiments carve train/val/test from it),
  omniglot_background (real images_background_small1.zip), omniglot_evaluation (real
  images_background_small2.zip), and the four CIFAR ones from fixtures (CIFAR has no small subset);
- smoke: the full-scale names, all from fixtures.

Keys of the .npz files (``load_prepared(path)`` returns them as a dict of numpy arrays):

- every dataset: ``images`` uint8 and ``labels`` int64 [N];
- MNIST: ``images`` [N,28,28];
- CIFAR: ``images`` [N,32,32,3] (HWC, RGB), ``label_names`` str [classes]; CIFAR-100 ``labels``
  are the fine labels, plus ``coarse_labels`` int64 [N] and ``coarse_label_names`` str [20];
- Omniglot: ``images`` [N,28,28] (MAML's resize; background 255, strokes 0), ``labels`` =
  character class 0..C-1 over the zip, ``alphabet`` (index into ``alphabet_names`` str [A]),
  ``character`` (0-based within its alphabet), ``drawing`` (0-based drawer, 0..19), all int64 [N],
  rows sorted by (alphabet name, character, drawing).
"""

from truncback.data.errors import ChecksumError, DataError, DownloadError, MissingFileError, UnknownNameError
from truncback.data.layout import prepared_path
from truncback.data.prepare import load_prepared

__all__ = [
    "load_prepared",
    "prepared_path",
    "DataError",
    "ChecksumError",
    "DownloadError",
    "MissingFileError",
    "UnknownNameError",
]
