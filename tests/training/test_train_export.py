from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ferkit.training.data import load_npz
from ferkit.training.trainer import TrainConfig, Trainer, stratified_folds, train


@pytest.fixture(scope="module")
def small_sets(data_dir):
    tr = load_npz("val", "ferplus", data_dir)  # real faces; val split is small and loads fast
    tr = tr.subset(np.flatnonzero(tr.labels >= 0)[:400])
    va = load_npz("test", "ferplus", data_dir).subset(np.arange(200))
    return tr, va


def test_training_lowers_the_loss(small_sets, tmp_path):
    torch.manual_seed(0)
    tr, va = small_sets
    aug = {"rotate": 0.0, "erase": 0.0, "brightness": 0.0, "contrast": 0.0, "translate": 0.0, "flip": 0.0,
           "scale": [1.0, 1.0]}
    cfg = TrainConfig.from_dict({"model": "cnn4", "epochs": 4, "batch_size": 64, "lr": 1e-3, "augment": aug,
                                 "weight_decay": 0.0, "warmup_epochs": 0, "schedule": "constant", "patience": 0})
    m = Trainer(cfg, tmp_path / "run", train=tr, val=va, quiet=True).run()
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in log if "train_loss" in r]
    assert losses[-1] < losses[0] * 0.9
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "metrics.json").exists()
    assert 0.0 <= m["val"]["accuracy"] <= 1.0 and m["temperature"] > 0


def test_resume_continues(small_sets, tmp_path):
    tr, va = small_sets
    cfg = TrainConfig(model="mini_xception", epochs=1, batch_size=128, patience=0)
    Trainer(cfg, tmp_path / "r", train=tr, val=va, quiet=True).run()
    cfg2 = TrainConfig(model="mini_xception", epochs=2, batch_size=128, patience=0)
    Trainer(cfg2, tmp_path / "r", train=tr, val=va, quiet=True).run()
    epochs = [json.loads(x).get("epoch") for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert [e for e in epochs if e] == [1, 2]


@pytest.mark.parametrize("balance", ["undersample", "oversample"])
def test_balancing(small_sets, tmp_path, balance):
    tr, va = small_sets
    cfg = TrainConfig(model="mini_xception", balance=balance, class_weight_power=1.0, minority_aug=True)
    t = Trainer(cfg, tmp_path / balance, train=tr, val=va, quiet=True)
    idx = t.epoch_indices(np.random.default_rng(0))
    counts = np.bincount(tr.labels[idx], minlength=8)
    present = counts[counts > 0]
    if balance == "undersample":
        assert present.min() == present.max()
    else:
        assert present.min() >= np.median(np.bincount(tr.labels)[np.bincount(tr.labels) > 0]) - 1


def test_stratified_folds_cover_everything():
    y = np.repeat(np.arange(4), [50, 30, 12, 8])
    folds = stratified_folds(y, 5, 0)
    allidx = np.sort(np.concatenate(folds))
    assert np.array_equal(allidx, np.arange(len(y)))
    for f in folds:
        assert abs(len(f) - 20) <= 4
        assert (np.bincount(y[f], minlength=4) > 0).all()


def test_kfold_reports_mean_std(data_dir, tmp_path):
    cfg = TrainConfig(model="mini_xception", data="ferplus", data_dir=str(data_dir), epochs=1, folds=2,
                      max_train=0, batch_size=256, patience=0)
    # Tiny CV: restrict the training split via a subset of the val file to stay fast.
    full = load_npz("val", "ferplus", data_dir)
    import ferkit.training.trainer as tmod

    orig = tmod.load_dataset
    tmod.load_dataset = lambda *a, **k: full.subset(np.arange(600))
    try:
        cv = train(cfg, tmp_path / "cv", quiet=True)
    finally:
        tmod.load_dataset = orig
    assert cv["folds"] == 2 and len(cv["fold_accuracy"]) == 2
    assert cv["accuracy_std"] >= 0 and (tmp_path / "cv" / "cv.json").exists()

    def no_nan(const: str) -> None:
        raise AssertionError(f"cv.json holds {const}, which is not JSON")

    json.loads((tmp_path / "cv" / "cv.json").read_text(), parse_constant=no_nan)


def test_cv_class_statistics_skip_folds_without_the_class():
    from ferkit.training.trainer import _nan_stat

    assert _nan_stat([0.5, None, 0.7], 1) == pytest.approx(0.6)
    assert _nan_stat([0.5, float("nan"), 0.7], 2) == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert _nan_stat([0.5, None], 2) is None and _nan_stat([None, None], 1) is None


@pytest.fixture(scope="module")
def slice_dir(data_dir, tmp_path_factory):
    """The real .npz layout, sliced to a few hundred rows per split (keeps export tests fast)."""
    out = tmp_path_factory.mktemp("npz")
    for name in ("fer2013_train.npz", "fer2013_val_public.npz", "fer2013_test_private.npz"):
        src = data_dir / name
        z = np.load(src if name != "fer2013_train.npz" else data_dir / "fer2013_val_public.npz")
        keys = ("images", "label", "ferplus_votes", "class_names", "ferplus_columns")
        np.savez(out / name, **{k: (z[k][:300] if z[k].ndim and k not in ("class_names", "ferplus_columns")
                                    else z[k]) for k in keys})
    return out


def test_export_parity_and_card(small_sets, tmp_path, slice_dir, data_dir):
    pytest.importorskip("onnx")
    tr, va = small_sets
    run = tmp_path / "run"
    Trainer(TrainConfig(model="mini_xception", epochs=1, batch_size=128), run, train=tr, val=va, quiet=True).run()
    from ferkit.inference import ExpressionModel
    from ferkit.training.export import export_runs, load_run_model, parity

    card = export_runs([(run, None)], "tiny", tmp_path / "w", "ferplus", str(slice_dir), evaluate_test=True)
    assert card["metrics"]["test"]["n"] > 200 and "test_flip_tta" in card["metrics"]
    assert card["onnx_torch_max_abs_diff"] < 1e-4
    model, _ = load_run_model(run)
    real = load_npz("test", "ferplus", data_dir).images[:32]
    assert parity(model, tmp_path / "w" / "tiny.onnx", real) < 1e-4
    em = ExpressionModel.load(tmp_path / "w" / "tiny.onnx")
    p = em.predict(real)
    assert p.shape == (32, 8) and np.allclose(p.sum(1), 1, atol=1e-5)
    for key in ("classes", "input", "temperature", "params", "macs", "sha256", "metrics", "licence", "members"):
        assert key in card
    # The card's figures are what `ferkit eval` computes afresh on the shipped file (calibrated, card temperature).
    from ferkit.evaluation.evaluate import evaluate_model, fit_model_temperature

    for split in ("val", "test"):
        fresh = evaluate_model(em, "ferplus", split, str(slice_dir))
        assert fresh["accuracy"] == card["metrics"][split]["accuracy"]
        assert fresh["ece"] == pytest.approx(card["metrics"][split]["ece"], abs=1e-9)
    assert card["temperature"] == pytest.approx(fit_model_temperature(em, "ferplus", str(slice_dir)), rel=1e-6)
    # A two-member ensemble exports too and stays a probability model.
    card2 = export_runs([(run, None), (run, None)], "ens", tmp_path / "w", "ferplus", str(slice_dir),
                        evaluate_test=False)
    assert card2["onnx_torch_max_abs_diff"] < 1e-4 and card2["kind"].startswith("ensemble")
    # Failures leave nothing half-made behind, and an earlier export of the same name stays as it was.
    from ferkit.errors import DatasetError, ModelError

    before = (tmp_path / "w" / "tiny.onnx").read_bytes()
    with pytest.raises(ModelError, match="disagree"):  # a degenerate zoom: the graph cannot match torch
        export_runs([(run, None)], "tiny", tmp_path / "w", "ferplus", str(slice_dir), evaluate_test=False,
                    tta_scales=(0.0,))
    assert (tmp_path / "w" / "tiny.onnx").read_bytes() == before
    no_test = tmp_path / "no_test"
    no_test.mkdir()
    for name in ("fer2013_train.npz", "fer2013_val_public.npz"):
        (no_test / name).write_bytes((slice_dir / name).read_bytes())
    with pytest.raises(DatasetError, match="--no-test"):
        export_runs([(run, None)], "nt", tmp_path / "w", "ferplus", str(no_test), evaluate_test=True)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["ens.json", "ens.onnx", "tiny.json", "tiny.onnx"]


def test_int8_export(small_sets, tmp_path, slice_dir, data_dir):
    onnx = pytest.importorskip("onnx")
    tr, va = small_sets
    run = tmp_path / "run"
    Trainer(TrainConfig(model="cnn4", epochs=1, batch_size=128), run, train=tr, val=va, quiet=True).run()
    from ferkit.inference import ExpressionModel
    from ferkit.training.export import export_runs

    card = export_runs([(run, None)], "q", tmp_path / "w", "ferplus", str(slice_dir), evaluate_test=False,
                       int8="minmax", calib_faces=128)
    q = card["quantization"]
    assert q["calibration"] == "minmax" and q["calibration_faces"] == 128
    assert q["agreement_with_float_on_val"]["top1_agreement"] > 0.85
    graph = onnx.load(tmp_path / "w" / "q.onnx").graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    # The head and everything after it stay float (no activation is quantized there, which would round the
    # probabilities of an ensemble to 1/255 steps)
    from ferkit.training.quantize import float_tail

    kinds = {n.name: n.op_type for n in graph.node}
    tail = [kinds[name] for name in float_tail(tmp_path / "w" / "q.onnx")]
    assert "Gemm" in tail and "QuantizeLinear" not in tail
    assert not list((tmp_path / "w").glob(".*float*"))  # the float intermediate is removed
    em = ExpressionModel.load(tmp_path / "w" / "q.onnx")
    p = em.predict(load_npz("test", "ferplus", data_dir).images[:16])
    assert p.shape == (16, 8) and np.allclose(p.sum(1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="calibration"):
        from ferkit.training.quantize import quantize_int8

        quantize_int8(b"", tmp_path / "x.onnx", np.zeros((4, 48, 48), np.uint8), method="nope")


def test_tta_export_matches_the_views(small_sets, tmp_path, slice_dir, data_dir):
    pytest.importorskip("onnx")
    import cv2

    from ferkit.training.export import TTA, count_macs, export_runs, load_run_model

    tr, va = small_sets
    run = tmp_path / "run"
    Trainer(TrainConfig(model="cnn4", epochs=1, batch_size=128), run, train=tr, val=va, quiet=True).run()
    model, _ = load_run_model(run)
    tta = TTA(model, (0.9, 1.0, 1.1), flip=True)
    faces = load_npz("test", "ferplus", data_dir).images[:8]
    x = torch.from_numpy(faces[:, None] / 255.0).float()
    views = tta.views(x)
    assert len(views) == 6 and torch.equal(views[2], x) and torch.equal(views[3], torch.flip(x, dims=[3]))
    # A zoomed view is the centre-scaled image (as cv2.warpAffine about the pixel-centre, border replicated).
    m = np.array([[1.1, 0, -0.1 * 23.5], [0, 1.1, -0.1 * 23.5]], np.float32)
    ref = cv2.warpAffine(faces[0].astype(np.float32) / 255, m, (48, 48), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(views[4][0, 0].numpy() - ref)[4:-4, 4:-4].max() < 1e-4
    with torch.no_grad():
        want = torch.stack([model(v) for v in views]).mean(0)
        assert torch.allclose(tta(x), want, atol=1e-5)
    assert count_macs(tta, 48) == 6 * count_macs(model, 48)
    card = export_runs([(run, None)], "t", tmp_path / "w", "ferplus", str(slice_dir), evaluate_test=False,
                       tta_scales=(0.9, 1.0, 1.1))
    assert card["test_time_augmentation"]["views"] == 6 and card["onnx_torch_max_abs_diff"] < 1e-4
    assert "6-view test-time augmentation" in card["kind"]


def test_online_distillation(small_sets, tmp_path):
    torch.manual_seed(0)
    tr, va = small_sets
    teacher = tmp_path / "teacher"
    Trainer(TrainConfig(model="cnn4", epochs=1, batch_size=128), teacher, train=tr, val=va, quiet=True).run()
    aug = {"rotate": 0.0, "erase": 0.0, "brightness": 0.0, "contrast": 0.0, "translate": 0.0, "flip": 0.0,
           "scale": [1.0, 1.0]}
    base = {"model": "mini_xception", "epochs": 1, "batch_size": 128, "augment": aug, "patience": 0,
            "device": "cpu"}

    def first_loss(run: str, **extra) -> tuple[Trainer, float]:
        torch.manual_seed(0)
        cfg = TrainConfig.from_dict({**base, **extra})
        t = Trainer(cfg, tmp_path / run, train=tr, val=va, quiet=True)
        t.run()
        log = [json.loads(x) for x in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        return t, [r["train_loss"] for r in log if "train_loss" in r][0]

    t_kd, kd = first_loss("kd", teachers=[str(teacher)], kd_weight=1.0, kd_temperature=2.0)
    _, plain = first_loss("plain")
    assert len(t_kd.teachers) == 1 and not any(p.requires_grad for p in t_kd.teachers[0].parameters())
    assert kd != pytest.approx(plain)  # the teacher term replaced the label loss
    # The distillation loss is zero when the student is the teacher.
    x = torch.from_numpy(va.images[:16, None] / 255.0).float()
    with torch.no_grad():
        z = t_kd.teachers[0](x)
    assert float(t_kd.distill_loss(z, x, None)) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="classes"):
        fer7 = TrainConfig.from_dict({**base, "teachers": [str(teacher)]})
        from ferkit.training.data import FaceSet

        y7 = np.clip(tr.labels, 0, 6)
        tr7 = FaceSet(tr.images, np.eye(7, dtype=np.float32)[y7], tuple(tr.classes[:7]), y7)
        v7 = np.clip(va.labels, 0, 6)
        va7 = FaceSet(va.images, np.eye(7, dtype=np.float32)[v7], tuple(va.classes[:7]), v7)
        Trainer(fer7, tmp_path / "bad", train=tr7, val=va7, quiet=True)


def test_view_bank_distillation(small_sets, tmp_path):
    """kd_views: views and teacher outputs are cached once (deterministic), teachers are freed, and the
    cached outputs are the teachers' outputs on exactly the cached pixels."""
    tr, va = small_sets
    teacher = tmp_path / "teacher"
    Trainer(TrainConfig(model="cnn4", epochs=1, batch_size=128, device="cpu"), teacher, train=tr, val=va,
            quiet=True).run()
    cfg = {"model": "cnn4", "epochs": 1, "batch_size": 128, "patience": 0, "device": "cpu",
           "teachers": [str(teacher)], "kd_weight": 0.8, "kd_views": 3}
    t = Trainer(TrainConfig.from_dict(cfg), tmp_path / "bank", train=tr, val=va, quiet=True)
    assert t.teachers == [] and t.bank.shape == (3, len(tr), 1, 48, 48) and t.bank.dtype == torch.uint8
    assert t.bank_probs.shape == (3, len(tr), len(tr.classes))
    assert torch.allclose(t.bank_probs.float().sum(-1), torch.ones(3, len(tr)), atol=1e-2)
    # Views differ from each other and from the originals (augmentation), but are reproducible.
    assert not torch.equal(t.bank[0], t.bank[1]) and not torch.equal(t.bank[0], t.x_train)
    again = Trainer(TrainConfig.from_dict(cfg), tmp_path / "bank2", train=tr, val=va, quiet=True)
    assert torch.equal(again.bank, t.bank)
    # The cached outputs are the teacher's on the cached pixels.
    from ferkit.training.export import load_run_model

    m, _ = load_run_model(teacher)
    with torch.no_grad():
        p = torch.softmax(m(t.bank[2, :32].float() / 255) / 2.0, 1)
    assert torch.allclose(p, t.bank_probs[2, :32].float(), atol=2e-3)
    metrics = t.run()
    assert 0 <= metrics["val"]["accuracy"] <= 1
    notes = [json.loads(x) for x in (tmp_path / "bank" / "log.jsonl").read_text().splitlines()]
    assert any("view bank: 3 views" in r.get("note", "") for r in notes)
    with pytest.raises(ValueError, match="mixup"):
        Trainer(TrainConfig.from_dict({**cfg, "mixup": 0.2}), tmp_path / "bad", train=tr, val=va, quiet=True)


def test_deadline_stops_training(small_sets, tmp_path):
    """A wall-clock budget (counted from the trainer's construction) ends the run after the epoch that
    crosses it, with a note in the log and a usable best checkpoint."""
    tr, va = small_sets
    cfg = TrainConfig(model="cnn4", epochs=50, batch_size=128, patience=0, device="cpu", deadline_min=0.001)
    m = Trainer(cfg, tmp_path / "run", train=tr, val=va, quiet=True).run()
    assert m["epochs_run"] == 1
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert "deadline of 0.001 min reached after epoch 1" in log


@pytest.mark.parametrize("head_epochs", [0, 1])
def test_interrupted_run_resumes_to_the_same_weights(small_sets, tmp_path, head_epochs):
    """Stopped after epoch 1 and resumed, a run ends bit-identical to one that was never interrupted (also when
    the stop falls at the switch from head-only training to the whole model)."""
    tr, va = small_sets
    cfg = TrainConfig(model="cnn4", epochs=3, batch_size=128, patience=0, mixup=0.2, head_epochs=head_epochs)
    whole = Trainer(cfg, tmp_path / "a", train=tr, val=va, quiet=True)
    whole.run()
    part = Trainer(cfg, tmp_path / "b", train=tr, val=va, quiet=True)
    assert part.run(max_epochs=1)["stopped_at_epoch"] == 1
    assert not (tmp_path / "b" / "metrics.json").exists()
    Trainer(cfg, tmp_path / "b", train=tr, val=va, quiet=True).run()
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_close_crop_is_built_into_the_export(small_sets, tmp_path, slice_dir):
    """A run trained on close crops exports a graph that crops, as training and validation did."""
    import onnxruntime as ort

    from ferkit.training.augment import AugmentConfig
    from ferkit.training.export import export_runs, load_run_model
    from ferkit.training.trainer import predict_logits

    tr, va = small_sets
    run = tmp_path / "run"
    Trainer(TrainConfig(model="cnn4", epochs=1, batch_size=128, augment=AugmentConfig(crop=0.7)), run,
            train=tr, val=va, quiet=True).run()
    card = export_runs([(run, None)], "c", tmp_path / "w", "ferplus", str(slice_dir), evaluate_test=False)
    assert card["members"][0]["close_crop"] == pytest.approx(0.7)
    x = va.images[:64]
    sess = ort.InferenceSession(str(tmp_path / "w" / "c.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: (x[:, None] / 255).astype(np.float32)})[0]
    raw = load_run_model(run)[0].model  # the bare network
    imgs = torch.from_numpy(x[:, None])
    want = predict_logits(raw, imgs, torch.device("cpu"), crop=0.7)
    uncropped = predict_logits(raw, imgs, torch.device("cpu"))
    assert np.abs(got - want).max() < 2e-2 < np.abs(got - uncropped).max()


def test_export_uses_the_runs_own_dataset(tmp_path, slice_dir):
    """A FER2013-label run exports against FER2013 labels by default; the wrong --data is a clear error."""
    from ferkit.errors import DatasetError
    from ferkit.training.export import export_runs

    tr = load_npz("train", "fer2013", slice_dir)
    va = load_npz("val", "fer2013", slice_dir)
    run = tmp_path / "run"
    Trainer(TrainConfig(model="cnn4", data="fer2013", epochs=1, batch_size=128), run, train=tr, val=va,
            quiet=True).run()
    card = export_runs([(run, None)], "f13", tmp_path / "w", data_dir=str(slice_dir), evaluate_test=False)
    assert card["data"]["dataset"] == "fer2013" and len(card["classes"]) == 7
    with pytest.raises(DatasetError, match="predicts 7 classes .* --data it was trained on"):
        export_runs([(run, None)], "bad", tmp_path / "w", "ferplus", str(slice_dir), evaluate_test=False)
    # a run on a folder of the .npz files with FER2013 labels exports against those labels, too
    run2 = tmp_path / "run2"
    Trainer(TrainConfig(model="cnn4", data=str(slice_dir), labels="fer2013", epochs=1, batch_size=128), run2,
            train=tr, val=va, quiet=True).run()
    card = export_runs([(run2, None)], "f13b", tmp_path / "w", evaluate_test=False)
    assert len(card["classes"]) == 7 and card["metrics"]["val"]["n"] == len(va)


def test_licence_note_names_the_data_and_weights_actually_used() -> None:
    from ferkit.training.export import licence_note

    fer = licence_note("ferplus", ["resnet_fast", "resnet_fast"])
    assert "FER2013 images" in fer and "FER+ labels" in fer and "EfficientNet" not in fer
    assert "EfficientNet-Lite0" in licence_note("fer2013", ["efficientnet_lite0"])
    own = licence_note("/data/affectnet", ["resnet18"])
    assert "FER2013" not in own and "/data/affectnet" in own


def test_resume_refuses_other_model_and_records_other_settings(small_sets, tmp_path, capsys) -> None:
    from ferkit.errors import ConfigError

    tr, va = small_sets
    run = tmp_path / "r"
    cfg = TrainConfig(model="cnn4", epochs=2, batch_size=128, patience=0)
    Trainer(cfg, run, train=tr, val=va, quiet=True).run(max_epochs=1)
    saved = (run / "config.json").read_text()
    with pytest.raises(ConfigError, match="model 'cnn4' -> 'mini_xception'"):
        Trainer(TrainConfig(model="mini_xception", epochs=2, batch_size=128, patience=0), run, train=tr, val=va,
                quiet=True).run()
    assert (run / "config.json").read_text() == saved  # the run's record is untouched
    Trainer(TrainConfig(model="cnn4", epochs=2, batch_size=128, patience=0, lr=5e-4), run, train=tr, val=va).run()
    assert "changed settings: lr 0.001 -> 0.0005" in capsys.readouterr().err
    notes = [json.loads(x).get("note", "") for x in (run / "log.jsonl").read_text().splitlines()]
    assert any("lr 0.001 -> 0.0005" in n for n in notes)


def test_export_errors_name_what_is_missing(tmp_path) -> None:
    from ferkit.errors import ModelError
    from ferkit.training.export import export_runs, resolve_checkpoint

    with pytest.raises(ModelError, match="no training run"):
        export_runs([(tmp_path / "nope", None)], "x", tmp_path)
    (tmp_path / "cv" / "fold0").mkdir(parents=True)
    with pytest.raises(ModelError, match="fold0"):
        resolve_checkpoint(tmp_path / "cv")
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="no best.pt"):
        resolve_checkpoint(run)
    (run / "last.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match="it has last.pt"):
        resolve_checkpoint(run)
    assert resolve_checkpoint(run, "last.pt") == run / "last.pt"  # RUN:last.pt is looked up in the run
    with pytest.raises(ModelError, match="not found"):
        resolve_checkpoint(run, "other.pt")


def test_export_of_an_unfinished_run_says_so(small_sets, tmp_path, slice_dir):
    tr, va = small_sets
    run = tmp_path / "run"
    Trainer(TrainConfig(model="cnn4", epochs=1, batch_size=128), run, train=tr, val=va, quiet=True).run()
    (run / "metrics.json").unlink()  # as while it is still training
    from ferkit.training.export import export_runs

    with pytest.warns(UserWarning, match="has not finished training"):
        card = export_runs([(run, None)], "u", tmp_path / "w", "ferplus", str(slice_dir), evaluate_test=False)
    assert card["members"][0]["finished_training"] is False


def test_warm_start_begins_from_the_runs_weights(small_sets, tmp_path) -> None:
    from ferkit.errors import ConfigError
    from ferkit.training.augment import AugmentConfig
    from ferkit.training.data import FaceSet

    tr, va = small_sets
    tr, va = tr.subset(np.arange(200)), va.subset(np.arange(100))
    src = tmp_path / "src"
    Trainer(TrainConfig(model="cnn4", epochs=1, batch_size=128, patience=0), src, train=tr, val=va,
            quiet=True).run()
    src_acc = json.loads((src / "metrics.json").read_text())["val"]["accuracy"]
    t = Trainer(TrainConfig(model="cnn4", epochs=1, init=str(src)), tmp_path / "ft", train=tr, val=va, quiet=True)
    best = torch.load(src / "best.pt", weights_only=False)["model"]  # RUN alone: its best.pt
    assert all(torch.equal(v.float(), best[k].float()) for k, v in t.model.state_dict().items())
    acc, _ = t.evaluate(t.model)
    assert acc == pytest.approx(src_acc)  # before any step it is the source model
    fresh = Trainer(TrainConfig(model="cnn4", epochs=1), tmp_path / "fresh", train=tr, val=va, quiet=True)
    assert not all(torch.equal(v, best[k].float()) for k, v in fresh.model.state_dict().items())

    def refused(match: str, cfg: TrainConfig, train: FaceSet = tr, val: FaceSet = va) -> None:
        with pytest.raises(ConfigError, match=match):
            Trainer(cfg, tmp_path / "x", train=train, val=val, quiet=True)

    refused("warm starts need the same model", TrainConfig(model="mini_xception", init=str(src)))
    refused("does not fit this model", TrainConfig(model="cnn4", model_kwargs={"input_size": 64}, init=str(src)))
    refused("same --crop", TrainConfig(model="cnn4", augment=AugmentConfig(crop=0.9), init=str(src)))
    k = len(tr.classes)  # the same classes in another order: the head would be scrambled
    flip = [FaceSet(d.images, d.targets[:, ::-1].copy(), tuple(reversed(d.classes)), np.where(d.labels >= 0,
                    k - 1 - d.labels, -1)) for d in (tr, va)]
    refused("same classes in the same order", TrainConfig(model="cnn4", init=str(src)), *flip)
    # A resumed fine-tune goes on from its last.pt, even when the run it started from is gone.
    cfg = TrainConfig(model="cnn4", epochs=2, batch_size=128, patience=0, init=f"{src}:last.pt")
    Trainer(cfg, tmp_path / "ft2", train=tr, val=va, quiet=True).run(max_epochs=1)
    import shutil

    shutil.rmtree(src)
    m = Trainer(cfg, tmp_path / "ft2", train=tr, val=va, quiet=True).run()
    assert m["epochs_run"] == 2
    notes = [json.loads(x).get("note", "") for x in (tmp_path / "ft2" / "log.jsonl").read_text().splitlines()]
    assert any("warm start from" in n for n in notes)


def test_soft_targets_are_blended_and_checked(small_sets, tmp_path) -> None:
    from ferkit.errors import ConfigError
    from ferkit.training.trainer import blend_soft_targets

    tr, _ = small_sets
    ds = tr.subset(np.arange(10))
    votes = ds.targets / ds.targets.sum(1, keepdims=True)
    teacher = np.full(ds.targets.shape, 1 / len(ds.classes), np.float32)
    np.save(tmp_path / "t.npy", teacher)
    blend_soft_targets(ds, TrainConfig(soft_targets=str(tmp_path / "t.npy"), soft_weight=0.25))
    np.testing.assert_allclose(ds.targets, 0.75 * votes + 0.25 * teacher, atol=1e-6)
    np.save(tmp_path / "short.npy", teacher[:5])
    (tmp_path / "junk.npy").write_text("not numpy")
    for name, match in [("short.npy", "do not match the training set"), ("junk.npy", "cannot read the soft"),
                        ("missing.npy", "cannot read the soft")]:
        with pytest.raises(ConfigError, match=match):
            blend_soft_targets(tr.subset(np.arange(10)), TrainConfig(soft_targets=str(tmp_path / name)))
    with pytest.raises(ConfigError, match="soft_weight must be in"):
        TrainConfig(soft_weight=1.5).check()


def test_channels_last_on_cpu_only_without_grouped_convolutions(small_sets, tmp_path) -> None:
    tr, va = small_sets
    dense = Trainer(TrainConfig(model="resnet_fast", device="cpu", epochs=1, batch_size=200, patience=0),
                    tmp_path / "a", train=tr, val=va, quiet=True)
    grouped = Trainer(TrainConfig(model="mini_xception", device="cpu"), tmp_path / "b", train=tr, val=va, quiet=True)
    assert dense.channels_last and not grouped.channels_last
    conv = next(p for p in dense.model.parameters() if p.ndim == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert 0 <= dense.run()["val"]["accuracy"] <= 1  # trains in that layout on CPU
    assert "memory layout channels_last" in (tmp_path / "a" / "log.jsonl").read_text()


def test_kfold_folds_train_on_the_blended_soft_targets(small_sets, tmp_path, monkeypatch) -> None:
    """k-fold hands each fold a training subset: the teacher probabilities are blended in before the split."""
    import ferkit.training.trainer as tmod

    tr, _ = small_sets
    full = tr.subset(np.arange(60))
    teacher = np.zeros(full.targets.shape, np.float32)
    teacher[:, 0] = 1.0
    np.save(tmp_path / "t.npy", teacher)
    seen = []

    class FakeTrainer:
        def __init__(self, cfg, run_dir, train=None, val=None, quiet=False):
            seen.append(train)
            self.classes = full.classes

        def run(self):
            per_class = {c: {"top1": 0.5} for c in full.classes}
            return {"val": {"accuracy": 0.5, "macro_f1": 0.5, "per_class": per_class}, "classes": list(full.classes)}

    monkeypatch.setattr(tmod, "load_dataset", lambda *a, **k: full.subset(np.arange(len(full))))
    monkeypatch.setattr(tmod, "Trainer", FakeTrainer)
    cfg = TrainConfig(model="cnn4", folds=2, soft_targets=str(tmp_path / "t.npy"), soft_weight=0.5)
    train(cfg, tmp_path / "cv", quiet=True)
    assert len(seen) == 2
    for ds in seen:
        assert np.all(ds.targets[:, 0] >= 0.5 - 1e-6)  # half of every row is the teacher's class 0


def test_kfold_rerun_with_another_split_is_refused(small_sets, tmp_path, monkeypatch) -> None:
    """folds and seed decide the k-fold split: a rerun with others would score old folds on faces they trained on."""
    import ferkit.training.trainer as tmod
    from ferkit.errors import ConfigError

    tr, _ = small_sets
    monkeypatch.setattr(tmod, "load_dataset", lambda *a, **k: tr.subset(np.arange(240)))
    run = tmp_path / "cv"

    def cfg(**kw):
        return TrainConfig(**{"model": "cnn4", "epochs": 1, "folds": 2, "batch_size": 128, "patience": 0, **kw})

    train(cfg(), run, quiet=True)
    for kw, match in [({"folds": 3}, "folds 2 -> 3"), ({"seed": 1}, "seed 0 -> 1")]:
        with pytest.raises(ConfigError, match=f"another split \\({match}\\).*new -o folder"):
            train(cfg(**kw), run, quiet=True)
    before = (run / "fold0" / "log.jsonl").read_text()
    assert train(cfg(), run, quiet=True)["folds"] == 2  # the same run resumes (its folds are done: no training)
    assert (run / "fold0" / "log.jsonl").read_text() == before
    (run / "kfold.json").unlink()  # a run folder from before the record: its cv.json and fold configs tell
    for kw, match in [({"folds": 3}, "folds 2 -> 3"), ({"seed": 1}, "seed 0 -> 1")]:
        with pytest.raises(ConfigError, match=match):
            train(cfg(**kw), run, quiet=True)
    (run / "cv.json").unlink()  # ... interrupted before its cv.json: the split cannot be told, so it is refused
    with pytest.raises(ConfigError, match="cannot tell"):
        train(cfg(folds=4), run, quiet=True)


def test_resume_refuses_another_close_crop(small_sets, tmp_path, capsys) -> None:
    """The close crop is applied at test time and built into the export: a resume cannot change it."""
    from ferkit.errors import ConfigError

    tr, va = small_sets
    run = tmp_path / "r"
    Trainer(TrainConfig(model="cnn4", epochs=2, batch_size=128, patience=0), run, train=tr, val=va,
            quiet=True).run(max_epochs=1)
    with pytest.raises(ConfigError, match="augment.crop 1.0 -> 0.9"):
        Trainer(TrainConfig(model="cnn4", epochs=2, batch_size=128, patience=0, augment={"crop": 0.9}), run,
                train=tr, val=va, quiet=True).run()
    Trainer(TrainConfig(model="cnn4", epochs=2, batch_size=128, patience=0, augment={"rotate": 10.0}), run,
            train=tr, val=va).run()  # other augmentation settings may change
    assert "changed settings: augment.rotate 15.0 -> 10.0" in capsys.readouterr().err
