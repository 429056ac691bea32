"""Pack the FER2013 train/val splits losslessly (WebP) so they fit the GPU machine's 64 MiB transfer,
plus the ImageNet EfficientNet-Lite0 backbone in fp16. Output: .carry/ (git-ignored).

    python tools/gpu_pack_data.py            # then: the device command runs tools/gpu_unpack_data.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ferkit.training.data import NPZ_FILES, default_data_dir  # noqa: E402


def main() -> None:
    out = ROOT / ".carry"
    out.mkdir(exist_ok=True)
    src = default_data_dir()
    for split in ("train", "val"):
        z = np.load(src / NPZ_FILES[split])
        blobs = [cv2.imencode(".webp", im, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].ravel() for im in z["images"]]
        for b, im in zip(blobs[:50], z["images"][:50]):
            assert np.array_equal(cv2.imdecode(b, cv2.IMREAD_GRAYSCALE), im), "WebP must be lossless"
        offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        np.savez(out / f"{split}.npz", webp=np.concatenate(blobs), offsets=offsets, label=z["label"],
                 ferplus_votes=z["ferplus_votes"], class_names=z["class_names"], ferplus_columns=z["ferplus_columns"])
        print(split, len(blobs), f"{offsets[-1] / 1e6:.1f} MB")
    import torch

    from ferkit.models.efficientnet import imagenet_weights_path

    sd = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    torch.save({k: v.half() for k, v in sd.items() if not k.startswith("_fc.")}, out / "efficientnet-lite0.pth")


if __name__ == "__main__":
    main()
