from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ferkit.cli import main


def test_models_lists_shipped_and_registered(capsys):
    assert main(["models", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {m["name"] for m in out["shipped"]}
    assert {"default", "fer2013"} <= names
    assert "mini_xception" in out["registered"]
    default = next(m for m in out["shipped"] if m["name"] == "default")
    assert default["classes"] == 8 and default["test_accuracy"] > 0.8
    assert isinstance(default["int8"], bool) and default["members"] >= 1 and default["tta_views"] >= 1
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "members" in table and "default" in table


def test_models_name_shows_the_card(tmp_path, capsys):
    from ferkit.inference.model import WEIGHTS_DIR

    assert main(["models", "default"]) == 0
    text = capsys.readouterr().out
    card = json.loads((WEIGHTS_DIR / "default.json").read_text())
    assert f"accuracy {card['metrics']['test']['accuracy']:.4f}" in text  # the card's figures, not others
    assert "test (evaluated once, at export)" in text and "contempt" in text and "member " in text
    assert main(["models", "fer2013", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "fer2013"
    assert main(["models", "nope"]) == 2
    assert "shipped models are" in capsys.readouterr().err
    lone = tmp_path / "lone.onnx"  # an ONNX file without its card
    lone.write_bytes((WEIGHTS_DIR / "default.onnx").read_bytes()[:100])
    assert main(["models", str(lone)]) == 2
    assert "no model card" in capsys.readouterr().err


def test_eval_json_on_a_slice(tmp_path, data_dir, capsys):
    z = np.load(data_dir / "fer2013_test_private.npz")
    for name in ("fer2013_train.npz", "fer2013_val_public.npz", "fer2013_test_private.npz"):
        np.savez(
            tmp_path / name,
            images=z["images"][:200],
            label=z["label"][:200],
            ferplus_votes=z["ferplus_votes"][:200],
            class_names=z["class_names"],
            ferplus_columns=z["ferplus_columns"],
        )
    png = tmp_path / "cm.png"
    assert (
        main(
            [
                "eval",
                "--model",
                "default",
                "--data",
                str(tmp_path),
                "--split",
                "test",
                "--json",
                "--confusion",
                str(png),
            ]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["n"] + rep["n_excluded"] <= 200 and 0.6 < rep["accuracy"] <= 1.0
    assert set(rep["per_class"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"}
    assert png.stat().st_size > 1000
    # FER2013 labels (7 classes) against the 8-class default: contempt is dropped and renormalised.
    assert (
        main(["eval", "--model", "default", "--data", "fer2013", "--data-dir", str(tmp_path), "--split", "test"]) == 0
    )
    out = capsys.readouterr().out
    assert "| mean over classes |" in out and "contempt probabilities left out" in out
    assert "left out" not in json.dumps(rep)  # the 8-class data uses all of the model's classes


def test_train_bad_dataset_names_the_layout(tmp_path, capsys):
    code = main(["train", "--data", "ferplus", "--data-dir", str(tmp_path), "-o", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "fer2013_train.npz" in err and "expected" in err


def test_train_config_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "typo.json"
    bad.write_text('{"epoch": 3}')
    assert main(["train", "--config", str(bad), "-o", str(tmp_path / "r")]) == 2
    assert "unknown config keys: ['epoch']" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "nope.json"), "-o", str(tmp_path / "r")]) == 2
    assert "cannot read config file" in capsys.readouterr().err
    bad.write_text("{not json")
    assert main(["train", "--config", str(bad), "-o", str(tmp_path / "r")]) == 2
    assert "not a valid json config" in capsys.readouterr().err
    assert main(["train", "--model", "nosuch", "--data", "ferplus", "-o", str(tmp_path / "r"), "--quiet",
                 "--max-train", "10"]) == 2
    assert "unknown model 'nosuch'; registered:" in capsys.readouterr().err


def test_explain_shipped_model_by_occlusion(tmp_path, capsys):
    import cv2

    samples = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples"
    if not samples.is_dir():
        pytest.skip("sample photos not found")
    out = tmp_path / "x.png"
    assert main(["explain", str(samples / "single_face.jpg"), "--model", "default", "-o", str(out)]) == 0
    assert "happy" in capsys.readouterr().out and cv2.imread(str(out)) is not None
    assert main(["explain", str(samples / "single_face.jpg"), "--model", "nosuch", "-o", str(out)]) == 2
    assert "shipped models: default, fer2013" in capsys.readouterr().err


@pytest.mark.parametrize("model,needle", [("nonexistent", "shipped models are"),
                                          ("/no/such/model.onnx", "model file not found"),
                                          ("RUN", "is a training run, not an exported model")])
def test_eval_unknown_model(model, needle, tmp_path, capsys):
    if model == "RUN":
        model = str(tmp_path)
        (tmp_path / "config.json").write_text("{}")
    assert main(["eval", "--model", model]) == 2
    assert needle in capsys.readouterr().err


def test_markdown_header_names_rows_dropped_on_load():
    from ferkit.evaluation.evaluate import markdown_table

    rep = {"data": "fer2013", "split": "val", "accuracy": 0.5, "macro_f1": 0.5, "ece": 0.1, "n": 10,
           "n_excluded": 0, "excluded_on_load": {"ambiguous label": 4, "not scored (tied)": 3},
           "per_class": {}, "mean_class_top1": 0.5, "mean_class_top2": 0.7, "var_class_top1": 0.0,
           "var_class_top2": 0.0}
    head = markdown_table(rep).splitlines()[0]
    assert "dropped on load: ambiguous label 4" in head and "tied" not in head


def test_bad_flags_are_refused_before_any_work(tmp_path, capsys):
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    cases = [
        (["eval", "--model", "default", "--confusion", str(tmp_path / "cm.txt")], "--confusion"),
        (["export", str(tmp_path), "--name", "x", "--tta-scales", "0", "-1"], "--tta-scales"),
        (["export", str(tmp_path), "--name", "x", "--int8", "minmax", "--calib-faces", "0"], "--calib-faces"),
        (["export", str(tmp_path / "nope"), "--name", "x"], "no training run"),
        (["train", "--model", "cnn4", "--model-arg", "input_size", "-o", str(tmp_path / "r")], "KEY=VALUE"),
        (["train", "--model", "cnn4", "--folds", "1", "-o", str(tmp_path / "r")], "at least 2"),
        (["train", "--model", "cnn4", "-o", str(afile)], "is a file"),
        (["export", str(tmp_path), "--name", "x", "--no-tta-flip"], "only applies with --tta-scales"),
    ]
    run = ["train", "--model", "cnn4", "--data", "ferplus", "--quiet", "-o", str(tmp_path / "bad")]
    for extra, needle in [(["--epochs", "0"], "epochs must be >= 1"), (["--max-train", "-5"], "max_train"),
                          (["--batch-size", "0"], "batch_size must be >= 1"), (["--lr", "-1"], "learning rate"),
                          (["--crop", "0"], "crop must be in (0, 1]"), (["--crop", "1.5"], "crop must be in"),
                          (["--folds", "-2"], "folds must be 0 (off) or >= 2"),
                          (["--kd-views", "2"], "kd_views needs teachers")]:
        cases.append((run + extra, needle))
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "bad").exists()  # a run refused before its first checkpoint leaves no folder


def test_unknown_model_argument_is_refused(tmp_path, capsys):
    argv = ["train", "--model", "cnn4", "--model-arg", "input_sise=96", "-o", str(tmp_path / "r"), "--quiet"]
    assert main(argv) == 2  # refused before any data is read
    assert "cnn4 takes no argument input_sise" in capsys.readouterr().err


def test_output_into_a_closed_pipe_ends_quietly():
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "ferkit", "models", "default"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdout.close()  # the reader is gone before ferkit writes a line (as `| head` after its lines)
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_train_run_folder_is_locked_and_datasets_are_stored_absolute(tmp_path, data_dir, monkeypatch, capsys):
    from ferkit.errors import OutputError
    from ferkit.io._files import FolderLock

    run = tmp_path / "run"
    with FolderLock(run, "busy"):  # as a second `ferkit train -o run` sees a run in progress
        assert main(["train", "--model", "cnn4", "--data", "ferplus", "--data-dir", str(data_dir), "--quiet",
                     "--epochs", "1", "--max-train", "64", "--max-eval", "64", "-o", str(run)]) == 2
        assert "another training run is using" in capsys.readouterr().err
    with pytest.raises(OutputError, match="busy"), FolderLock(tmp_path / "b", "free"), FolderLock(tmp_path / "b",
                                                                                                   "busy"):
        pass
    monkeypatch.chdir(data_dir.parent)
    assert main(["train", "--model", "cnn4", "--data", "ferplus", "--data-dir", data_dir.name, "--quiet",
                 "--epochs", "1", "--max-train", "64", "--max-eval", "64", "-o", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data_dir"] == str(data_dir.resolve())  # export / resume work from any folder


def test_export_name_must_be_a_file_name(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--name", "../escape", "--out-dir", str(tmp_path / "w")]) == 2
    assert "give a plain file name" in capsys.readouterr().err


def test_config_files_in_json_yaml_and_toml(tmp_path, monkeypatch):
    import builtins

    from ferkit.cli import _load_config_file
    from ferkit.errors import ConfigError

    want = {"model": "cnn4", "epochs": 3, "model_kwargs": {"input_size": 48}}
    (tmp_path / "c.json").write_text(json.dumps(want))
    (tmp_path / "c.yaml").write_text("model: cnn4\nepochs: 3\nmodel_kwargs:\n  input_size: 48\n")
    (tmp_path / "c.toml").write_text('model = "cnn4"\nepochs = 3\n[model_kwargs]\ninput_size = 48\n')
    for name in ("c.json", "c.yaml", "c.toml"):
        assert _load_config_file(str(tmp_path / name)) == want
    (tmp_path / "bad.yaml").write_text("model: [cnn4\n")
    with pytest.raises(ConfigError, match="bad.yaml is not a valid yaml config"):
        _load_config_file(str(tmp_path / "bad.yaml"))
    real_import = builtins.__import__

    def no_yaml(name, *a, **k):
        if name == "yaml":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_yaml)
    with pytest.raises(ConfigError, match="YAML configs need PyYAML"):
        _load_config_file(str(tmp_path / "c.yaml"))


def test_train_config_and_registry_refuse_bad_values_up_front():
    from ferkit.errors import ConfigError
    from ferkit.models import create_model
    from ferkit.training import TrainConfig
    from ferkit.training.augment import AugmentConfig

    for kw, match in [({"scheme": "xx"}, "scheme must be one of"), ({"optimizer": "adam"}, "optimizer must be"),
                      ({"schedule": "plateau"}, "schedule must be"), ({"balance": "smote"}, "balance must be"),
                      ({"device": "gpu"}, "device must be"), ({"labels": "affectnet"}, "labels must be one of"),
                      ({"data": "ferplus", "labels": "fer2013"}, "use data 'fer2013'")]:
        with pytest.raises(ConfigError, match=match):
            TrainConfig(**kw).check()
    from ferkit.cli import build_parser
    from ferkit.training.options import CHOICES

    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    cli_choices = {a.dest: tuple(a.choices) for a in train_parser._actions if a.choices}
    for key, allowed in CHOICES.items():  # the CLI offers exactly what the config accepts
        assert cli_choices[key] == allowed
        for value in allowed:
            TrainConfig(**{key: value}).check()
    cfg = TrainConfig(augment={"crop": 0.9, "scale": [0.9, 1.1]})
    assert isinstance(cfg.augment, AugmentConfig) and cfg.augment.scale == (0.9, 1.1)
    with pytest.raises(ConfigError, match="known keys"):
        TrainConfig(augment={"cropp": 0.9})
    with pytest.raises(ConfigError, match="cnn4 takes no argument bogus; it takes in_chans"):
        create_model("cnn4", bogus=1)
    assert create_model("cnn4", pretrained=False) is not None  # accepted by every architecture


def test_export_and_evaluate_take_plain_names(tmp_path, data_dir):
    from ferkit.errors import ModelError
    from ferkit.evaluation import evaluate_model
    from ferkit.training import export_runs, load_dataset

    with pytest.raises(ModelError, match="no training run at"):  # a plain run path is a member
        export_runs(str(tmp_path / "nope"), "x", tmp_path)
    with pytest.raises(ModelError, match="members must be run directories"):
        export_runs([("a", "b", "c")], "x", tmp_path)
    with pytest.raises(ModelError, match="unknown int8 calibration"):
        export_runs([tmp_path], "x", tmp_path, int8="fast")
    part = load_dataset("ferplus", "test", data_dir=data_dir).subset(np.arange(100))
    rep = evaluate_model("default", "ferplus", "test", dataset=part)
    assert rep["n"] + rep["n_excluded"] == 100 and rep["all_rows"] is False


def test_a_command_that_needs_torch_says_which_extra_without_it(tmp_path):
    """Without torch (the inference-only install), ferkit train / export end with one line naming the extra."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; from ferkit.cli import main; "
            f"sys.exit(main(['train', '--model', 'cnn4', '--data', 'ferplus', '-o', {str(tmp_path / 'r')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "needs torch (the [train] extra)" in proc.stderr and "Traceback" not in proc.stderr


def test_config_values_of_the_wrong_type_are_refused_or_converted(tmp_path, capsys):
    from ferkit.errors import ConfigError
    from ferkit.training import TrainConfig

    cfg = TrainConfig.from_dict({"lr": "1e-3", "warmup_epochs": 0, "augment": {"crop": "0.9"}})
    assert cfg.lr == 1e-3 and isinstance(cfg.warmup_epochs, float) and cfg.augment.crop == 0.9
    cfg.check()
    for d, match in [({"epochs": "two"}, "epochs must be a whole number, got 'two'"),
                     ({"epochs": 1.5}, "epochs must be a whole number, got 1.5"),
                     ({"batch_size": True}, "batch_size must be a whole number, got True"),
                     ({"lr": "fast"}, "lr must be a number, got 'fast'"),
                     ({"amp": "no"}, "amp must be true or false"),
                     ({"teachers": "runs/a"}, "teachers must be a list of strings"),
                     ({"augment": {"scale": [0.9]}}, "augment.scale must be a list of 2 numbers")]:
        with pytest.raises(ConfigError, match=match):
            TrainConfig.from_dict(d)
    cfg = TrainConfig()
    cfg.epochs = 2.5  # (set after construction: check() looks again)
    with pytest.raises(ConfigError, match="epochs must be a whole number"):
        cfg.check()
    pytest.importorskip("yaml")
    (tmp_path / "c.yaml").write_text("model: cnn4\nlr: 1e-3\nepochs: two\n")  # PyYAML: '1e-3' and 'two' are strings
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "epochs must be a whole number, got 'two'" in err and "Traceback" not in err


def test_model_argument_values_that_cannot_build_are_a_config_error():
    from ferkit.errors import ConfigError
    from ferkit.models import create_model

    with pytest.raises(ConfigError, match="resnet_fast cannot be built with the arguments width='abc'"):
        create_model("resnet_fast", width="abc")
    with pytest.raises(ConfigError, match="width=-1"):
        create_model("resnet_fast", width=-1)
    with pytest.raises(ConfigError, match="resnet_fast takes no argument bogus"):  # (names are checked first)
        create_model("resnet_fast", bogus=1)


def test_eval_over_all_the_models_classes(data_dir, tmp_path):
    """By default FER2013's 7 classes are scored on an 8-class model renormalised over those 7; --all-classes
    scores the model as used (a face it calls contempt counts as wrong) and lists every model class."""
    import json

    import numpy as np

    from ferkit.cli import main
    from ferkit.evaluation import evaluate_model, markdown_table
    from ferkit.training import load_dataset

    part = load_dataset("fer2013", "test", data_dir=data_dir).subset(np.arange(300))
    z_lab = part.labels.copy()
    restricted = evaluate_model("default", "fer2013", "test", dataset=part)
    full = evaluate_model("default", "fer2013", "test", dataset=part, all_classes=True)
    assert "model_classes_left_out" in restricted and "model_classes_left_out" not in full
    assert len(full["per_class"]) == 8 and full["per_class"]["contempt"]["n"] == 0
    assert full["accuracy"] <= restricted["accuracy"] and full["n"] == restricted["n"]
    assert np.array_equal(part.labels, z_lab)  # the dataset is not changed
    assert "scored over all 8 model classes" in markdown_table(full)
    out = tmp_path / "rep.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["eval", "--model", "default", "--data", "fer2013", "--data-dir", str(data_dir), "--split",
                     "val", "--all-classes", "--json"]) == 0
    out.write_text(buf.getvalue())
    assert json.loads(out.read_text())["all_classes"] is True
