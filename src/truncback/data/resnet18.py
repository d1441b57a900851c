"""The architecture of torchvision's ResNet-18 weights file (``resnet18-f37072fd.pth``, one of the
archives), written out in plain torch with torchvision's module names (He et al. 2016), so that the
real file loads with ``load_state_dict(strict=True)`` and a synthetic stand-in has its names and shapes."""

import copy
import hashlib
import re
from pathlib import Path

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a (projected, when the shape changes) shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class ResNet18(nn.Module):
    """ResNet-18 with torchvision's module names (conv1, bn1, layer1..layer4, fc)."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, 128, 256, 512)
        for index, (inplanes, planes) in enumerate(zip((64,) + widths[:-1], widths), start=1):
            stride = 1 if index == 1 else 2
            setattr(
                self,
                f"layer{index}",
                nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes, 1)),
            )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def features(self, x):
        """The 512-dim global-average-pool output (the input of ``fc``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.features(x))


def load_resnet18(path) -> ResNet18:
    """A ResNet18 in eval mode with the state dict of ``path``; when the file name carries a hash
    prefix (torchvision's ``name-<sha256 prefix>.pth``), the file's SHA-256 must start with it."""
    path = Path(path)
    match = re.search(r"-([0-9a-f]{8,})\.pth?$", path.name)
    if match:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(match.group(1)):
            raise ValueError(
                f"{path}: SHA-256 {digest} does not start with {match.group(1)} (as its name "
                f"says); the file is corrupt or not torchvision's weights"
            )
    model = ResNet18()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


@torch.no_grad()
def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Conv2d:
    """The convolution followed by the batch norm in eval mode, as one convolution with a bias:
    W' = W s, b' = beta - mu s with s = gamma / sqrt(sigma^2 + eps) per output channel."""
    assert norm.running_mean is not None and norm.running_var is not None  # eval-mode statistics
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        conv.stride,  # type: ignore[arg-type]
        conv.padding,  # type: ignore[arg-type]
        bias=True,
        dtype=conv.weight.dtype,
        device=conv.weight.device,
    )
    folded.weight.copy_(conv.weight * scale[:, None, None, None])
    assert folded.bias is not None
    folded.bias.copy_(norm.bias - norm.running_mean * scale)
    return folded


def for_inference(model: ResNet18) -> ResNet18:
    """A copy of ``model`` (in eval mode) for feature extraction: each batch norm folded into the
    convolution before it, and the weights in channels-last layout (feed it channels-last inputs).
    Its outputs are the model's up to float rounding (a few 1e-7 relative in float32), about a third
    faster on one CPU core."""
    fast = copy.deepcopy(model).eval()
    fast.conv1, fast.bn1 = _fold(fast.conv1, fast.bn1), nn.Identity()  # type: ignore[assignment]
    for index in range(1, 5):
        for block in getattr(fast, f"layer{index}"):
            block.conv1, block.bn1 = _fold(block.conv1, block.bn1), nn.Identity()
            block.conv2, block.bn2 = _fold(block.conv2, block.bn2), nn.Identity()
            if block.downsample is not None:
                block.downsample = nn.Sequential(_fold(block.downsample[0], block.downsample[1]))
    return fast.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
