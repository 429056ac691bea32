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


def test_labels_pick_the_label_set_of_an_npz_folder_only(data_dir, tmp_path):
    """``labels`` chooses FER+ or FER2013 labels for a folder of the .npz files; it may not contradict the
    dataset name, and a CSV or image folder (which carry their own labels) refuses it."""
    assert load_dataset(str(data_dir), "test", "fer2013").classes == FER2013_CLASSES
    assert load_dataset(str(data_dir), "test").classes == FERPLUS_CLASSES
    assert load_dataset("fer2013", "test", "fer2013", data_dir).classes == FER2013_CLASSES
    with pytest.raises(DatasetError, match="use data 'fer2013'"):
        load_dataset("ferplus", "test", "fer2013", data_dir)
    with pytest.raises(DatasetError, match="unknown label set 'affectnet'"):
        load_dataset(str(data_dir), "test", "affectnet")
    from ferkit.training.data import normalise_labels

    assert normalise_labels("ferplus", None) is normalise_labels("ferplus", "ferplus") is None
    assert normalise_labels(str(data_dir), None) == normalise_labels(str(data_dir), "ferplus") == "ferplus"
    (tmp_path / "train" / "happy").mkdir(parents=True)
    with pytest.raises(DatasetError, match="carries its own labels"):
        load_dataset(str(tmp_path), "train", "fer2013")


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
    for row in ("x,1 2 3,Training", "3,1 two 3,Training"):  # not numbers: named with the line
        bad.write_text(f"emotion,pixels,Usage\n{row}\n")
        with pytest.raises(DatasetError, match=r"bad.csv:2: .*not numbers"):
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
    assert "skipped 2 unreadable" in capsys.readouterr().err  # stderr: stdout may carry --json
    with pytest.raises(DatasetError, match="root/<split>/<class>"):
        load_image_folder(tmp_path, "val")


def test_image_folder_class_indices_shared_by_splits(tmp_path):
    """A split without some class folder keeps the class indices of the others."""
    _write_folder(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "test" / "happy")
    train, test = load_image_folder(tmp_path, "train"), load_image_folder(tmp_path, "test")
    assert train.classes == test.classes == ("happy", "sad", "neutral")
    assert set(test.labels) == {1, 2}


def test_image_folder_ignores_hidden_folders_and_warns_of_classes_without_training_images(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "test" / ".ipynb_checkpoints").mkdir()  # a notebook's leftovers are not a class
    (tmp_path / ".git").mkdir()
    assert load_image_folder(tmp_path, "test").classes == ("happy", "sad", "neutral")
    only_test = tmp_path / "test" / "contempt"
    only_test.mkdir()
    cv2.imwrite(str(only_test / "0.png"), np.zeros((60, 60, 3), np.uint8))
    with pytest.warns(UserWarning, match="no training images of class contempt"):
        assert "contempt" in load_image_folder(tmp_path, "train").classes
    import shutil

    shutil.copytree(tmp_path / "test", tmp_path / "holdout", ignore=shutil.ignore_patterns("contempt"))
    assert len(load_dataset(str(tmp_path), "holdout")) == 9  # a split of another name still loads
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(DatasetError, match="not UTF-8 text; expected a CSV with header path,label"):
        load_dataset(str(bad), "test")


def test_path_csv_split_column(tmp_path):
    _write_folder(tmp_path)
    p = tmp_path / "list.csv"
    p.write_text("path,label,split\ntrain/happy/0.png,happy,train\ntrain/neutral/1.png,neutral,train\n"
                 "test/sadness/0.png,sad,val\ntest/happy/1.png,happy,validation\n")
    with pytest.warns(UserWarning, match="no training images of class sad"):
        tr = load_dataset(str(p), "train")
    va = load_dataset(str(p), "val")
    assert len(tr) == 2 and len(va) == 2 and tr.classes == va.classes == ("happy", "sad", "neutral")
    assert list(va.labels) == [1, 0] and tr.source != va.source
    with pytest.raises(DatasetError, match="no rows with split 'test'"):
        load_dataset(str(p), "test")


def test_training_refuses_validation_on_training_data(tmp_path):
    """A path CSV without a split column is one list: training on it would select models on training data."""
    from ferkit.training.trainer import TrainConfig, Trainer

    _write_folder(tmp_path)
    p = tmp_path / "list.csv"
    p.write_text("path,label\ntrain/happy/0.png,happy\ntrain/neutral/1.png,neutral\n")
    with pytest.raises(DatasetError, match="split column"):
        Trainer(TrainConfig(model="cnn4", data=str(p), epochs=1), tmp_path / "run", quiet=True)


def test_path_csv(tmp_path):
    _write_folder(tmp_path)
    p = tmp_path / "list.csv"
    p.write_text("path,label\ntrain/happy/0.png,happy\ntrain/neutral/1.png,neutral\n")
    fs = load_path_csv(p)
    assert len(fs) == 2 and list(fs.classes) == ["happy", "neutral"]
    assert fs.source.endswith("(all rows: no split column)")  # reports say so instead of naming a split
    from ferkit.evaluation.evaluate import markdown_table, score_logits

    assert fs.all_rows and fs.subset(np.arange(1)).all_rows
    rep = score_logits(np.eye(2, dtype=np.float32), fs, fs.classes, 1.0, data=str(p), split="val")
    assert rep["all_rows"] and "(all rows)" in markdown_table(rep).splitlines()[0]
    fs.all_rows = False  # the label follows the flag, not the wording of the source
    assert "**x val**" in markdown_table(score_logits(np.eye(2, dtype=np.float32), fs, fs.classes, 1.0,
                                                         data="x", split="val"))
    p.write_text("path,label\ntrain/happy/0.png,happy\nmissing.png,neutral\ntrain/neutral/1.png,neutral\n")
    fs = load_path_csv(p)  # a missing file is skipped and counted
    assert len(fs) == 2 and fs.excluded["unreadable images"] == 1
    short = tmp_path / "short.csv"
    short.write_text("path,label\ntrain/happy/0.png,happy\ntrain/neutral/1.png\n")  # a row without its label
    with pytest.raises(DatasetError, match="line 3: a path and a label are needed"):
        load_path_csv(short)
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\nx,y\n")
    with pytest.raises(DatasetError, match="path,label"):
        load_path_csv(bad)
    with pytest.raises(DatasetError, match="cannot read dataset"):
        load_dataset(str(tmp_path / "nothing.txt"), "train")


def test_a_slice_reports_only_its_own_rows(data_dir):
    full = load_npz("test", "ferplus", data_dir)
    assert full.excluded["no FER+ votes"] > 0
    part = full.subset(np.arange(300))
    assert "no FER+ votes" not in part.excluded  # dropped from the file, not from this slice
    assert part.excluded["not scored (unknown/not-a-face/tied plurality)"] == int((part.labels < 0).sum())
    assert repr(part).startswith("<FaceSet 300 images from") and len(repr(part)) < 600
