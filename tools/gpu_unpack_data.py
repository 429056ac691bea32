"""Inverse of gpu_pack_data.py on the GPU machine: writes the standard .npz layout to a folder."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from_dir, to_dir = Path(sys.argv[1]), Path(sys.argv[2])
to_dir.mkdir(parents=True, exist_ok=True)
names = {"train": "fer2013_train.npz", "val": "fer2013_val_public.npz"}
for split, name in names.items():
    z = np.load(from_dir / f"{split}.npz")
    off, blob = z["offsets"], z["webp"]
    images = np.stack([cv2.imdecode(blob[off[i]:off[i + 1]], cv2.IMREAD_GRAYSCALE) for i in range(len(off) - 1)])
    np.savez(to_dir / name, images=images, label=z["label"], ferplus_votes=z["ferplus_votes"],
             class_names=z["class_names"], ferplus_columns=z["ferplus_columns"])
    print(split, images.shape)
