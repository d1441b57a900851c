"""Registry of the datasets: archives (file names, URLs, recorded digests) and, per scale, the
prepared array files and the archives each one is made from.

Digests: ``md5`` values are those torchvision publishes for these archives; ``sha256`` values are
recorded by us where we could cross-check them (MNIST and CIFAR: the values other projects pin, e.g.
Keras for CIFAR; Omniglot small subsets: ``../shared/datasets/README.md``; none is known for the two
full Omniglot zips, whose torchvision MD5 alone is checked). For three of the gzip-compressed MNIST
files we also record digests of the decompressed IDX payload, computed from copies whose payload is
the official one, so that a re-compressed copy (same data, different gzip bytes) is accepted.
"""

from dataclasses import dataclass

from truncback.data.errors import UnknownNameError


@dataclass(frozen=True)
class Digests:
    """Hex digests recorded for some bytes; ``None`` where no value is recorded. ``sha256_prefix`` is
    the start of a SHA-256 (torchvision names its weights files ``name-<first 8 hex digits>.pth``)."""

    md5: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None

    def recorded(self) -> dict[str, str]:
        return {
            name: value
            for name, value in (("md5", self.md5), ("sha256", self.sha256), ("sha256_prefix", self.sha256_prefix))
            if value
        }


@dataclass(frozen=True)
class Archive:
    """One file as published: where to get it and how to recognise it."""

    key: str
    group: str
    filename: str
    urls: tuple[str, ...]
    digests: Digests
    payload_digests: Digests | None = None
    fixture_filename: str | None = None

    def __post_init__(self):
        if not self.digests.recorded():
            raise ValueError(f"archive {self.key}: at least one digest must be recorded")

    @property
    def relpath(self) -> str:
        """Location under a data root (``data/raw``, a fixture folder or data_dir)."""
        return f"{self.group}/{self.filename}"

    @property
    def fixture_relpath(self) -> str:
        """Location of its synthetic stand-in under a fixture folder: the published name, unless the
        name states a digest the stand-in cannot have (``fixture_filename``)."""
        return f"{self.group}/{self.fixture_filename or self.filename}"


@dataclass(frozen=True)
class Recipe:
    """One prepared array file at one scale: which parser, from which archives, of which origin."""

    dataset: str
    part: str
    archives: tuple[str, ...]
    origin: str

    @property
    def name(self) -> str:
        return f"{self.dataset}_{self.part}"


# torchvision's order: its mirror first, the official host (often refusing scripts) last.
MNIST_BASES = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
CIFAR_BASES = ("https://www.cs.toronto.edu/~kriz/",)
OMNIGLOT_BASES = (
    "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/",
    "https://github.com/brendenlake/omniglot/raw/master/python/",
)


TORCHVISION_MODELS = ("https://download.pytorch.org/models/",)


def _archive(
    key, group, filename, bases, md5=None, sha256=None, payload=None, sha256_prefix=None, fixture_filename=None
) -> Archive:
    urls = tuple(base + filename for base in bases)
    return Archive(key, group, filename, urls, Digests(md5, sha256, sha256_prefix), payload, fixture_filename)


ARCHIVES = {
    archive.key: archive
    for archive in (
        _archive(
            "mnist_train_images",
            "mnist",
            "train-images-idx3-ubyte.gz",
            MNIST_BASES,
            md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
            sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        _archive(
            "mnist_train_labels",
            "mnist",
            "train-labels-idx1-ubyte.gz",
            MNIST_BASES,
            md5="d53e105ee54ea40749a09fcbcd1e9432",
            sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            payload=Digests(
                "a25bea736e30d166cdddb491f175f624", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
            ),
        ),
        _archive(
            "mnist_test_images",
            "mnist",
            "t10k-images-idx3-ubyte.gz",
            MNIST_BASES,
            md5="9fb629c4189551a2d022fa330f9573f3",
            sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            payload=Digests(
                "2646ac647ad5339dbf082846283269ea", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
            ),
        ),
        _archive(
            "mnist_test_labels",
            "mnist",
            "t10k-labels-idx1-ubyte.gz",
            MNIST_BASES,
            md5="ec29112dd5afa0611ce80d1b7f02629c",
            sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            payload=Digests(
                "27ae3e4e09519cfbb04c329615203637", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
            ),
        ),
        _archive(
            "cifar10",
            "cifar10",
            "cifar-10-python.tar.gz",
            CIFAR_BASES,
            md5="c58f30108f718f92721af3b95e74349a",
            sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        ),
        _archive(
            "cifar100",
            "cifar100",
            "cifar-100-python.tar.gz",
            CIFAR_BASES,
            md5="eb9058c3a382ffc7106e4002c42a8d85",
            sha256="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        ),
        _archive(
            "omniglot_background",
            "omniglot",
            "images_background.zip",
            OMNIGLOT_BASES,
            md5="68d2efa1b9178cc56df9314c21c6e718",
        ),
        _archive(
            "omniglot_evaluation",
            "omniglot",
            "images_evaluation.zip",
            OMNIGLOT_BASES,
            md5="6b91aef0f799c5bb55b94e3f2daec811",
        ),
        _archive(
            "omniglot_background_small1",
            "omniglot",
            "images_background_small1.zip",
            OMNIGLOT_BASES,
            sha256="f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
        ),
        _archive(
            "omniglot_background_small2",
            "omniglot",
            "images_background_small2.zip",
            OMNIGLOT_BASES,
            sha256="3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
        ),
        # torchvision's ImageNet ResNet-18 (the task-interaction features at full scale); the file name
        # carries the first 8 hex digits of its SHA-256, which is all torchvision publishes of it; its
        # seeded stand-in (same shapes) cannot carry that digest, so it has a name without one.
        _archive(
            "resnet18_weights",
            "models",
            "resnet18-f37072fd.pth",
            TORCHVISION_MODELS,
            sha256_prefix="f37072fd",
            fixture_filename="resnet18-synthetic.pth",
        ),
    )
}

# Archives a scale needs beyond its prepared datasets' (files used as they are, not parsed), by origin.
EXTRA_ARCHIVES = {"full": {"resnet18_weights": "real"}, "rehearsal": {"resnet18_weights": "fixture"}}


def _full_set(origin: str) -> tuple[Recipe, ...]:
    return (
        Recipe("mnist", "train", ("mnist_train_images", "mnist_train_labels"), origin),
        Recipe("mnist", "test", ("mnist_test_images", "mnist_test_labels"), origin),
        Recipe("cifar10", "train", ("cifar10",), origin),
        Recipe("cifar10", "test", ("cifar10",), origin),
        Recipe("cifar100", "train", ("cifar100",), origin),
        Recipe("cifar100", "test", ("cifar100",), origin),
        Recipe("omniglot", "background", ("omniglot_background",), origin),
        Recipe("omniglot", "evaluation", ("omniglot_evaluation",), origin),
    )


# quick: the real small subsets where they exist (MNIST's test files, Omniglot small1 as the
# meta-training and small2 as the meta-test alphabets); CIFAR has none, so it uses fixtures.
_QUICK = (
    Recipe("mnist", "test", ("mnist_test_images", "mnist_test_labels"), "real"),
    Recipe("cifar10", "train", ("cifar10",), "fixture"),
    Recipe("cifar10", "test", ("cifar10",), "fixture"),
    Recipe("cifar100", "train", ("cifar100",), "fixture"),
    Recipe("cifar100", "test", ("cifar100",), "fixture"),
    Recipe("omniglot", "background", ("omniglot_background_small1",), "real"),
    Recipe("omniglot", "evaluation", ("omniglot_background_small2",), "real"),
)

# The scales (the one list of their names: the CLI's choices and the config schema's enum read it) and
# the prepared datasets of each.
RECIPES = {
    "full": _full_set("real"),
    # the paper's settings on quick's real subsets only (task interaction is left out)
    "offline": tuple(entry for entry in _QUICK if entry.origin == "real"),
    "quick": _QUICK,
    "smoke": _full_set("fixture"),
    # the paper scale's jobs on synthetic archives of the real sizes (docs/reproducing.md)
    "rehearsal": _full_set("fixture"),
}


def _unknown(kind: str, name, known) -> UnknownNameError:
    return UnknownNameError(f"unknown {kind} {name!r}; known: {', '.join(known)}")


def archive(key: str) -> Archive:
    """The archive registered under ``key`` (e.g. ``mnist_test_images``)."""
    if key not in ARCHIVES:
        raise _unknown("archive", key, ARCHIVES)
    return ARCHIVES[key]


def archive_named(filename: str) -> Archive:
    """The archive whose published (or stand-in) file name is ``filename`` (e.g. ``cifar-10-python.tar.gz``)."""
    by_filename = {name: item for item in ARCHIVES.values() for name in (item.filename, item.fixture_filename) if name}
    if filename not in by_filename:
        raise _unknown("archive file name", filename, by_filename)
    return by_filename[filename]


def recipes(scale: str) -> tuple[Recipe, ...]:
    """Every prepared array file of a scale."""
    if scale not in RECIPES:
        raise _unknown("scale", scale, RECIPES)
    return RECIPES[scale]


def recipe(scale: str, name: str) -> Recipe:
    """The recipe of the prepared dataset ``name`` (e.g. ``mnist_test``) at ``scale``."""
    by_name = {entry.name: entry for entry in recipes(scale)}
    if name not in by_name:
        raise _unknown(f"dataset at scale {scale!r}:", name, by_name)
    return by_name[name]


def archives_of(scale: str, origin: str) -> list[Archive]:
    """The distinct archives a scale takes from ``origin`` ("real" or "fixture"), in registry order."""
    keys = {key for entry in recipes(scale) if entry.origin == origin for key in entry.archives}
    keys |= {key for key, where in EXTRA_ARCHIVES.get(scale, {}).items() if where == origin}
    return [item for key, item in ARCHIVES.items() if key in keys]


def extra_archive_origin(scale: str, key: str) -> str:
    """Where ``scale`` takes the extra archive ``key`` from: "fixture" where the scale says so, else
    "real" (also where a reduced scale is configured to use it)."""
    archive(key)
    return EXTRA_ARCHIVES.get(scale, {}).get(key, "real")


def placement_hint(expected) -> str:
    """How to supply ``expected`` archives by hand: the exact names to put into data_dir."""
    names = ", ".join(item.relpath for item in expected)
    return (
        f"Put the file(s) into a folder DIR - in the sub-folder shown, or at DIR's top level - and "
        f"run with --config data_dir=DIR: {names}"
    )
