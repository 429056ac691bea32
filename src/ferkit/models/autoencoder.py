"""Dense and convolutional autoencoders on 48 px faces, and the classifier built on a frozen encoder.

Training helpers live in :mod:`ferkit.embed.autoencoder`.

``ae_dense_clf`` / ``ae_conv_clf`` are registered models (encoder + small head), so a semi-supervised run loads,
exports and compares like any other ferkit model.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import FERNet, conv_bn
from .registry import register_model


def dense_encoder(latent: int = 64, in_chans: int = 1, size: int = 48) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * size * size, 512), nn.ReLU(inplace=True),
                         nn.Linear(512, 128), nn.ReLU(inplace=True), nn.Linear(128, latent))


def conv_encoder(latent: int = 64, in_chans: int = 1) -> nn.Module:
    return nn.Sequential(conv_bn(in_chans, 32, 3, 2), conv_bn(32, 64, 3, 2), conv_bn(64, 128, 3, 2),
                         nn.Flatten(), nn.Linear(128 * 6 * 6, latent))


class DenseAE(nn.Module):
    """Fully connected autoencoder 2304-512-128-latent (mirrored decoder, tanh output in [-1, 1])."""

    def __init__(self, latent: int = 64, in_chans: int = 1, size: int = 48) -> None:
        super().__init__()
        self.shape = (in_chans, size, size)
        self.encoder = dense_encoder(latent, in_chans, size)
        self.decoder = nn.Sequential(nn.Linear(latent, 128), nn.ReLU(inplace=True), nn.Linear(128, 512),
                                     nn.ReLU(inplace=True), nn.Linear(512, in_chans * size * size), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).reshape(-1, *self.shape)


class ConvAE(nn.Module):
    """Convolutional autoencoder: three stride-2 convs to 6x6x128, a linear bottleneck, transposed convs back."""

    def __init__(self, latent: int = 64, in_chans: int = 1) -> None:
        super().__init__()
        self.encoder = conv_encoder(latent, in_chans)
        self.fc_dec = nn.Linear(latent, 128 * 6 * 6)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(32, in_chans, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.relu(self.fc_dec(self.encoder(x))).reshape(-1, 128, 6, 6))


class AEClassifier(nn.Module):
    """Encoder of an autoencoder + MLP head; ``forward_features`` is the latent code."""

    def __init__(self, encoder: nn.Module, latent: int, num_classes: int, hidden: int = 128,
                 drop: float = 0.3) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(inplace=True), nn.Dropout(drop))
        self.fc = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.encoder(x)))


@register_model
def ae_dense_clf(num_classes: int = 8, in_chans: int = 1, input_size: int = 48, latent: int = 64,
                 **_: object) -> FERNet:
    """Dense-autoencoder encoder + MLP head (semi-supervised: encoder pre-trained, frozen)."""
    return FERNet(AEClassifier(dense_encoder(latent, in_chans, input_size), latent, num_classes), in_chans=in_chans,
                  backbone_chans=in_chans, input_size=input_size)


@register_model
def ae_conv_clf(num_classes: int = 8, in_chans: int = 1, input_size: int = 48, latent: int = 64,
                **_: object) -> FERNet:
    """Convolutional-autoencoder encoder + MLP head (semi-supervised: encoder pre-trained, frozen)."""
    return FERNet(AEClassifier(conv_encoder(latent, in_chans), latent, num_classes), in_chans=in_chans,
                  backbone_chans=in_chans, input_size=48)
