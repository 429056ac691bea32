"""Small CNNs for 48-64 px faces: the seeds' 4-conv baseline, mini-Xception, VGG13 (FER+) and ResNets."""

from __future__ import annotations

import torch
from torch import nn

from .base import FERNet, conv_bn
from .registry import register_model


class _Classifier(nn.Module):
    """``features`` -> global pooling -> dropout -> linear; ``forward_features`` returns the pooled vector."""

    def __init__(self, features: nn.Module, dim: int, num_classes: int, drop: float) -> None:
        super().__init__()
        self.body = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop)
        self.fc = nn.Linear(dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.forward_features(x)))


class CNN4(nn.Module):
    """The seeds' baseline: four 3x3 conv layers with pooling, then a dense layer."""

    def __init__(self, num_classes: int, in_chans: int = 1, input_size: int = 48) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(in_chans, 32), conv_bn(32, 64), nn.MaxPool2d(2), nn.Dropout(0.25),
            conv_bn(64, 128), nn.MaxPool2d(2), conv_bn(128, 128), nn.MaxPool2d(2), nn.Dropout(0.25),
        )
        s = input_size // 8
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * s * s, 1024), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(1024, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.forward_features(x)))


class _XceptionModule(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.skip = conv_bn(cin, cout, 1, 2, act=False)
        self.main = nn.Sequential(
            nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False), nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, groups=cout, bias=False), nn.Conv2d(cout, cout, 1, bias=False),
            nn.BatchNorm2d(cout), nn.MaxPool2d(3, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


class MiniXception(nn.Module):
    """mini-Xception (Arriaga et al. 2017): two plain convs, four residual depthwise-separable modules,
    a final conv to the classes and global average pooling (no dense layer)."""

    def __init__(self, num_classes: int, in_chans: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(in_chans, 8), conv_bn(8, 8),
            _XceptionModule(8, 16), _XceptionModule(16, 32), _XceptionModule(32, 64), _XceptionModule(64, 128),
        )
        self.out = nn.Conv2d(128, num_classes, 3, 1, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.out(self.body(x))).flatten(1)


class VGG13(nn.Module):
    """VGG13 as in FER+ (Barsoum et al. 2016), 64x64 input, with batch norm added for stable training."""

    def __init__(self, num_classes: int, in_chans: int = 1, input_size: int = 64, width: int = 64) -> None:
        super().__init__()
        w = width
        cfg = [(in_chans, w, 2), (w, 2 * w, 2), (2 * w, 4 * w, 3), (4 * w, 4 * w, 3)]
        layers: list[nn.Module] = []
        for cin, cout, n in cfg:
            for i in range(n):
                layers.append(conv_bn(cin if i == 0 else cout, cout))
            layers += [nn.MaxPool2d(2), nn.Dropout(0.25)]
        self.body = nn.Sequential(*layers)
        s = input_size // 16
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * w * s * s, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(1024, 1024), nn.ReLU(inplace=True),
        )
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(1024, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.forward_features(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.main = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, 1, act=False))
        self.skip = nn.Identity() if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.main(x) + self.skip(x))


def _resnet_body(in_chans: int, width: int, depths: tuple[int, ...], stem_stride: int) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = [conv_bn(in_chans, width, 3, stem_stride)]
    cin = width
    for i, d in enumerate(depths):
        cout = width * 2**i
        for j in range(d):
            layers.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
            cin = cout
    return nn.Sequential(*layers), cin


@register_model
def cnn4(num_classes: int = 8, in_chans: int = 1, input_size: int = 48, **_: object) -> FERNet:
    """The seeds' 4-conv CNN baseline (about 5 M params at 48 px, mostly the dense layer)."""
    return FERNet(CNN4(num_classes, in_chans, input_size), in_chans=in_chans, backbone_chans=in_chans,
                  input_size=input_size)


@register_model
def mini_xception(num_classes: int = 8, in_chans: int = 1, input_size: int = 64, **_: object) -> FERNet:
    """mini-Xception (Arriaga et al. 2017), the real-time net of the `fer` package (~60 k params)."""
    return FERNet(MiniXception(num_classes, in_chans), in_chans=in_chans, backbone_chans=in_chans,
                  input_size=input_size)


@register_model
def vgg13(num_classes: int = 8, in_chans: int = 1, input_size: int = 64, width: int = 64, **_: object) -> FERNet:
    """VGG13 of the FER+ paper (Barsoum et al. 2016) at 64x64."""
    return FERNet(VGG13(num_classes, in_chans, input_size, width), in_chans=in_chans, backbone_chans=in_chans,
                  input_size=input_size)


@register_model
def resnet18(num_classes: int = 8, in_chans: int = 1, input_size: int = 48, width: int = 64,
             drop: float = 0.3, **_: object) -> FERNet:
    """ResNet-18 layout for 48-64 px faces: 3x3 stem at full resolution, no max-pool."""
    body, dim = _resnet_body(in_chans, width, (2, 2, 2, 2), 1)
    return FERNet(_Classifier(body, dim, num_classes, drop), in_chans=in_chans, backbone_chans=in_chans,
                  input_size=input_size)


@register_model
def resnet_fast(num_classes: int = 8, in_chans: int = 1, input_size: int = 48, width: int = 32,
                drop: float = 0.2, **_: object) -> FERNet:
    """A CPU-friendly ResNet for 48 px faces: strided stem, widths 32-256."""
    body, dim = _resnet_body(in_chans, width, (2, 2, 2, 2), 2)
    return FERNet(_Classifier(body, dim, num_classes, drop), in_chans=in_chans, backbone_chans=in_chans,
                  input_size=input_size)
