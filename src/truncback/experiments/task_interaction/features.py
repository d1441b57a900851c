"""Image features for the task-interaction experiment (sec. 4.2.2): the 512-dim global-pool output of
a ResNet-18 (He et al. 2016) pretrained on ImageNet, or, at the reduced scales, seeded random ReLU
features, computed once per dataset split and cached as an .npz.

- ``resnet18``: torchvision's ResNet-18 (``truncback.data.resnet18``) with its ImageNet weights file
  (``resnet18-f37072fd.pth``, fetched and verified by the data rules, and checked again against the
  SHA-256 prefix in its name), loaded with ``load_state_dict(strict=True)``. Images are resized to
  ``image_size`` (bilinear) and normalised with the ImageNet mean and std.
- ``random``: relu(P x) with x the pixels scaled to [-0.5, 0.5] and P a Gaussian 3072 x ``random_dim``
  matrix drawn from ``seed`` (scaled by 1/sqrt(3072)); no pretraining. Outputs made from these
  features say so.

Only the images the runs read need features: with ``--drawn DATASET TRIALS TRAIN VAL`` the first
``--data`` file (the training split) gets features for the rows that trials 0, ..., TRIALS - 1 draw
into their subsets of TRAIN and VAL examples per class (``subsets.drawn_rows``; a third of CIFAR-10's
50,000 images and an eighth of CIFAR-100's at the paper's sizes), the other rows left zero. Every file
records which rows were computed (``computed``); a run that draws a row left zero is refused.

``python -m truncback features --data cifar10_train.npz cifar10_test.npz --output f_train.npz f_test.npz --settings '{...}' [--weights resnet18-f37072fd.pth] [--drawn cifar10 10 50 50]``
"""

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from truncback.data.resnet18 import ResNet18, for_inference, load_resnet18
from truncback.data.sources import archive
from truncback.experiments.task_interaction.subsets import drawn_rows
from truncback.runtime.determinism import configure_torch, write_npz
from truncback.runtime.device import add_compute_arguments, select_device
from truncback.runtime.files import load_arrays, write_json
from truncback.runtime.progress import ProgressLog
from truncback.runtime.settings import Settings, setting

WEIGHTS = archive("resnet18_weights")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXTRACTORS = ("resnet18", "random")


@dataclass(frozen=True)
class FeatureSettings(Settings):
    """The config's ``task_interaction.features`` section (docs/assumptions.md)."""

    section: ClassVar[str] = "feature"

    extractor: str = setting(
        "resnet18",
        "resnet18: ImageNet-pretrained ResNet-18 (torchvision's weights, fetched "
        "by the data rules like every archive); random: seeded random ReLU features",
        enum=list(EXTRACTORS),
    )
    image_size: int = setting(224, "side the 32x32 images are resized to for the ResNet", type="integer", minimum=32)
    batch_size: int = setting(50, "images per forward pass", type="integer", minimum=1)
    random_dim: int = setting(512, "dimension of the random features", type="integer", minimum=1)
    seed: int = setting(0, "seed of the random projection", type="integer", minimum=0)
    max_images: int | None = setting(
        None,
        "features of only the first this many images of each split (of the rows needed), the "
        "others left zero (the rehearsal, whose estimate scales the time per image "
        "up to all of them); null: every image",
        type=["integer", "null"],
        minimum=1,
    )

    def check(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"extractor={self.extractor!r}; choose one of {list(EXTRACTORS)}")


def imagenet_input(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [n, h, w, 3] -> float [n, 3, size, size], bilinear resize, ImageNet normalisation."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def random_projection(settings: FeatureSettings, pixels: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(settings.seed)
    return torch.randn(pixels, settings.random_dim, generator=generator) / pixels**0.5


@torch.no_grad()
def extract(images: np.ndarray, settings: FeatureSettings, model: ResNet18 | None = None, device="cpu") -> np.ndarray:
    """float32 [n, d] features of uint8 images [n, h, w, 3], ``batch_size`` images at a time; the
    ResNet (on ``device``) or the random projection (always on the CPU)."""
    projection = random_projection(settings, int(np.prod(images.shape[1:]))) if model is None else None
    chunks = []
    for start in range(0, len(images), settings.batch_size):
        batch = images[start : start + settings.batch_size]
        if model is None:
            x = torch.from_numpy(batch.reshape(len(batch), -1)).float() / 255.0 - 0.5
            assert projection is not None  # made above when model is None
            chunks.append(torch.relu(x @ projection))
        else:
            x = imagenet_input(batch, settings.image_size).to(device, memory_format=torch.channels_last)
            chunks.append(model.features(x).cpu())
    return torch.cat(chunks).numpy().astype(np.float32)


def weights_name(weights=None) -> str:
    """The file name of the ResNet's weights (``weights``: its path; None: torchvision's file)."""
    return Path(weights).name if weights else WEIGHTS.filename


def describe(settings: FeatureSettings, weights=None) -> str:
    """How the features were made, in words, for captions and titles (``weights``: the ResNet's file)."""
    if settings.extractor == "resnet18":
        trained = "pretrained on ImageNet" if weights_name(weights) == WEIGHTS.filename else "with the weights of"
        return f"ResNet-18 {trained} ({weights_name(weights)}, {settings.image_size} px input)"
    return f"seeded random ReLU features of the pixels (dim {settings.random_dim}, seed {settings.seed})"


def features_of(
    images: np.ndarray, settings: FeatureSettings, model, device, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(features of every image, which rows were computed): those of ``rows`` (sorted; None: every
    image), and with ``max_images`` only the first ones of those; the others are zero."""
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    chosen = rows if settings.max_images is None else rows[: settings.max_images]
    computed = np.zeros(len(images), bool)
    computed[chosen] = True
    extracted = extract(images[chosen], settings, model, device)
    features = np.zeros((len(images), extracted.shape[1]), np.float32)
    features[chosen] = extracted
    return features, computed


def drawn_argument(values: list) -> tuple:
    """``--drawn DATASET TRIALS TRAIN VAL`` as (dataset, trials, train_per_class, val_per_class); a
    ValueError naming a count that is not a positive integer."""
    dataset, *counts = values
    names = ("TRIALS", "TRAIN", "VAL")
    parsed = []
    for name, count in zip(names, counts):
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--drawn: {name} must be a positive integer, got {count!r}")
        parsed.append(int(count))
    return (dataset, *parsed)


def main(args) -> int:
    settings = FeatureSettings.from_dict(json.loads(args.settings))
    if len(args.data) != len(args.output):
        raise ValueError(f"--data has {len(args.data)} file(s) but --output has {len(args.output)}")
    configure_torch(args.threads)
    device = select_device(args.device)
    model = None
    if settings.extractor == "resnet18":
        if not args.weights:
            raise ValueError(
                f"extractor resnet18 needs --weights, the path of {WEIGHTS.filename} (rule "
                f"data_archive_{WEIGHTS.key} fetches it from {WEIGHTS.urls[0]})"
            )
        model = for_inference(load_resnet18(args.weights)).to(device)
    drawn = drawn_argument(args.drawn) if args.drawn else None
    timing = {"images": 0, "images_needed": 0, "images_computed": 0, "extract_seconds": 0.0}
    with ProgressLog(args.log) as log:
        for index, (source, target) in enumerate(zip(args.data, args.output)):
            arrays = load_arrays(source, ("images", "labels"))
            rows = drawn_rows(arrays["labels"], *drawn) if drawn and index == 0 else None
            needed = len(arrays["images"]) if rows is None else len(rows)
            which = f": those trials 0-{drawn[1] - 1} of {drawn[0]} draw" if drawn and rows is not None else ""
            log(
                f"features of {source} ({needed} of {len(arrays['images'])} images{which}): {describe(settings, args.weights)}"
            )
            start = time.perf_counter()
            features, computed = features_of(arrays["images"], settings, model, device, rows)
            timing["extract_seconds"] += time.perf_counter() - start
            timing["images"] += len(features)
            timing["images_needed"] += needed
            timing["images_computed"] += int(computed.sum())
            write_npz(
                target,
                features=features,
                labels=arrays["labels"].astype(np.int64),
                computed=computed,
                extractor=np.array(describe(settings, args.weights)),
                pretrained=np.array(model is not None and weights_name(args.weights) == WEIGHTS.filename),
                settings=np.array(json.dumps(asdict(settings), sort_keys=True)),
            )
            log(f"wrote {target}: features {features.shape}, {int(computed.sum())} rows computed")
    if args.timing:
        write_json(args.timing, timing)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "features",
        help="cached image features for task interaction (sec. 4.2.2)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", nargs="+", required=True, help="prepared CIFAR .npz files (images uint8 [n,32,32,3])")
    parser.add_argument("--output", nargs="+", required=True, help="one features .npz per --data file")
    parser.add_argument("--settings", default="{}", help="JSON object of FeatureSettings fields")
    parser.add_argument(
        "--weights", help=f"torchvision's ResNet-18 ImageNet weights ({WEIGHTS.filename}; extractor resnet18)"
    )
    add_compute_arguments(parser)
    parser.add_argument("--log", help="also write the progress lines to this file")
    parser.add_argument("--timing", help="write the images computed and their seconds to this JSON file")
    parser.add_argument(
        "--drawn",
        nargs=4,
        metavar=("DATASET", "TRIALS", "TRAIN", "VAL"),
        help="features of the first --data file (the training split) only for the rows that trials 0..TRIALS-1 "
        "of DATASET draw with TRAIN and VAL examples per class; the others are left zero",
    )
    parser.set_defaults(run=main)
