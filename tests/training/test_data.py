from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from ferkit.errors import DatasetError
from ferkit.labels import FER2013_CLASSES, FERPLUS_CLASSES, votes_to_classes
from ferkit.training.data import (
    load_dataset,
    load_image_folder,
    load_kaggle_csv,
    load_npz,
    load_path_csv,
)


def test_npz_ferplus_val(data_dir):
    fs = load_npz("val", "ferplus", data_dir)
    assert fs.classes == FERPLUS_CLASSES
    assert fs.images.shape[1:] == (48, 48) and fs.images.dtype == np.uint8
    assert fs.targets.shape == (len(fs), 8)
    assert (fs.targets.sum(1) > 0).all()
    # README counts for PublicTest plurality labels (neutral 1241, happiness 877, contempt 26).
    counts = fs.class_counts()
    assert counts[FERPLUS_CLASSES.index("neutral")] == 1241
    assert counts[FERPLUS_CLASSES.index("happy")] == 877
    assert counts[FERPLUS_CLASSES.index("contempt")] == 26
    assert fs.excluded["no FER+ votes"] == 10
    # Every scored label is the plurality of its votes.
    m = fs.labels >= 0
    assert (fs.targets[m].argmax(1) == fs.labels[m]).all()


def test_npz_fer2013_drops_ambiguous(data_dir):
    fs = load_npz("test", "fer2013", data_dir)
    assert fs.classes == FER2013_CLASSES
    assert len(fs) == 3589 - 4
    assert fs.class_counts()[1] == 55  # disgust in PrivateTest
    assert (fs.targets.argmax(1) == fs.labels).all()


def test_votes_reorder():
    votes = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 0, 0]])
    # columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF
    out = votes_to_classes(votes)[0]
    assert dict(zip(FERPLUS_CLASSES, out)) == {
        "angry": 5, "disgust": 6, "fear": 7, "happy": 2, "sad": 4, "surprise": 3, "neutral": 1, "contempt": 8}


def test_missing_npz_names_layout(tmp_path):
    with pytest.raises(DatasetError, match="fer2013_train.npz"):
        load_npz("train", "ferplus", tmp_path)
    with pytest.raises(DatasetError, match="unknown split"):
        load_npz("holdout", "ferplus", tmp_path)


def test_kaggle_csv(tmp_path):
    p = tmp_path / "fer2013.csv"
    rng = np.random.default_rng(0)
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(6):
            px = " ".join(map(str, rng.integers(0, 256, 48 * 48)))
            w.writerow([i % 7, px, "Training" if i < 4 else "PrivateTest"])
    fs = load_kaggle_csv(p, "train")
    assert len(fs) == 4 and fs.images.shape == (4, 48, 48)
    assert list(fs.labels) == [0, 1, 2, 3]
    assert len(load_dataset(str(p), "test")) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="emotion,pixels,Usage"):
        load_kaggle_csv(bad)


def _write_folder(root, n_bad: int = 0):
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for cls in ("happy", "sadness", "neutral"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(d / f"{i}.png"), rng.integers(0, 256, (60, 60, 3), dtype=np.uint8))
    for i in range(n_bad):
        (root / "train" / "happy" / f"bad{i}.jpg").write_bytes(b"not an image")


def test_image_folder_skips_and_counts_bad(tmp_path, capsys):
    _write_folder(tmp_path, n_bad=2)
    fs = load_image_folder(tmp_path, "train")
    assert len(fs) == 9 and fs.images.shape[1:] == (48, 48)
    assert set(fs.classes) == {"happy", "sad", "neutral"}
    assert fs.excluded["unreadable images"] == 2
    assert "skipped 2 unreadable" in capsys.readouterr().out
    with pytest.raises(DatasetError, match="root/<split>/<class>"):
        load_image_folder(tmp_path, "val")


def test_path_csv(tmp_path):
    _write_folder(tmp_path)
    p = tmp_path / "list.csv"
    p.write_text("path,label\ntrain/happy/0.png,happy\ntrain/neutral/1.png,neutral\n")
    fs = load_path_csv(p)
    assert len(fs) == 2 and list(fs.classes) == ["happy", "neutral"]
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\nx,y\n")
    with pytest.raises(DatasetError, match="path,label"):
        load_path_csv(bad)
    with pytest.raises(DatasetError, match="cannot read dataset"):
        load_dataset(str(tmp_path / "nothing.txt"), "train")
