from __future__ import annotations

import numpy as np
import pytest

from ferkit.compare import _best, make_subsets, markdown, occlusion_sample


def _doc() -> dict:
    classes = ["a", "b"]
    res = []
    for name, acc, var in [("m1", 0.8, 0.02), ("m2", 0.7, 0.01)]:
        res.append({"name": name, "accuracy": acc, "mean_class_top1": acc, "var_class_top1": var,
                    "top2_accuracy": acc + 0.1, "mean_class_top2": acc, "var_class_top2": var, "macro_f1": acc,
                    "params": 1e6, "macs": 2e6, "faces_per_s": 100.0 if name == "m1" else 200.0, "budget": "x",
                    "per_class_top1": {"a": 0.9, "b": 0.1}, "per_class_top2": {"a": 1.0, "b": None},
                    "subsets": {"occ_eyes": 0.5}})
    return {"meta": {"classes": classes, "test": "t", "n_test_scored": 10, "speed": "s",
                     "subset_sizes": {"occ_eyes": 5}}, "results": res}


def test_markdown_marks_best() -> None:
    md = markdown(_doc())
    assert "| m1 | **0.8000** |" in md
    assert "**0.0100**" in md  # lowest variance
    assert "**200**" in md  # fastest
    assert "–" in md  # missing value
    assert _best([1.0, float("nan"), 3.0], True) == {2}
    assert _best([1.0, 1.0, 3.0], False) == {0, 1}
    assert _best([0.0, 0.0, 0.0], True) == set()  # a tie of every row marks nothing
    one = _doc()
    one["results"] = one["results"][:1]
    assert "**" not in markdown(one)  # a single model: nothing to mark as best


def test_subsets_reproducible() -> None:
    imgs = (np.random.default_rng(0).random((50, 48, 48)) * 255).astype(np.uint8)
    labels = np.array([-1, 0, 1, 2, 3] * 10)
    s1 = make_subsets(imgs, labels, None, n_occ=12)
    s2 = make_subsets(imgs, labels, None, n_occ=12)
    assert list(s1) == ["occ_clean", "occ_eyes", "occ_mouth", "occ_random"]
    for k in s1:
        assert np.array_equal(s1[k][0], s2[k][0]) and np.array_equal(s1[k][1], s2[k][1])
    idx = occlusion_sample(labels, 12)
    assert len(idx) == 12 and (labels[idx] >= 0).all()


def test_cli_registers_research_commands() -> None:
    from ferkit.cli import build_parser

    p = build_parser()
    args = p.parse_args(["explain", "face.png", "--model", "ferplus_rf48_kd", "-o", "out.png"])
    assert callable(args.func) and args.model == "ferplus_rf48_kd"
    assert callable(p.parse_args(["compare", "--no-speed"]).func)


def test_best_ignores_missing() -> None:
    assert _best([float("nan"), None], True) == set()
    assert _best([None, 0.5, 0.7], False) == {1}


def test_compare_refuses_what_it_cannot_score() -> None:
    from ferkit.compare import compare
    from ferkit.errors import InputError, ModelError

    with pytest.raises(ModelError, match="no trained models"):
        compare([], "/tmp/unused")
    with pytest.raises(InputError, match="occlusion-faces"):
        compare([object()], "/tmp/unused", n_occ=0)  # type: ignore[list-item]


def test_explain_close_crop_heat_stays_on_the_crop() -> None:
    import numpy as np
    import torch

    from ferkit.explain import explain
    from ferkit.models import create_model
    from ferkit.training.augment import CloseCropped

    torch.manual_seed(0)
    net = CloseCropped(create_model("cnn4", num_classes=8), 0.5).eval()
    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    heat, probs, info = explain(net, face)
    assert heat.shape == (48, 48) and probs.shape == (8,) and "close crop 0.5" in info["method"]
    assert heat[:12].max() == 0 and heat[:, 36:].max() == 0  # the model never saw the outer ring


def test_projection_of_few_faces() -> None:
    import numpy as np

    from ferkit.embed.plots import project_2d

    assert project_2d(np.random.default_rng(0).random((20, 128))).shape == (20, 2)


def test_explain_bad_patch_is_a_clear_error(capsys) -> None:
    from ferkit.cli import main

    assert main(["explain", "x.png", "--model", "default", "--patch", "0", "-o", "/tmp/x.png"]) == 2
    assert "--patch must be in 1..48" in capsys.readouterr().err


def test_budget_names_the_cpu_threads_the_run_used(tmp_path) -> None:
    import json

    from ferkit.compare import Entry

    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"workers_threads": 0}))
    m = {"device": "cpu", "hardware": "x86_64", "wall_s": 120.0, "epochs_run": 3}
    (run / "metrics.json").write_text(json.dumps({**m, "cpu_threads": 2}))
    assert Entry("r", run, run / "best.pt").budget() == "3 ep, 2.0 min, CPU 2 threads"
    (run / "metrics.json").write_text(json.dumps(m))  # older runs: the config's thread count, if it set one
    assert Entry("r", run, run / "best.pt").budget() == "3 ep, 2.0 min, CPU"
    (run / "config.json").write_text(json.dumps({"workers_threads": 1}))
    assert Entry("r", run, run / "best.pt").budget() == "3 ep, 2.0 min, CPU 1 thread"


def test_runs_with_the_same_folder_name_get_distinct_labels(tmp_path) -> None:
    from pathlib import Path

    from ferkit.compare import Entry, distinct_names

    es = [Entry("mx", Path("/r/a/mx"), Path("/r/a/mx/best.pt")), Entry("mx", Path("/r/b/mx"), Path("/r/b/mx/best.pt")),
          Entry("other", Path("/r/a/other"), Path("/r/a/other/best.pt"))]
    assert [e.name for e in distinct_names(es)] == ["a/mx", "b/mx", "other"]


def test_explain_probabilities_use_the_runs_temperature(tmp_path) -> None:
    import json

    import torch

    from ferkit.compare import Entry
    from ferkit.explain import explain
    from ferkit.models import create_model

    torch.manual_seed(0)
    net = create_model("cnn4", num_classes=8)
    face = (np.random.default_rng(0).random((48, 48)) * 255).astype(np.uint8)
    _, p1, _ = explain(net, face)
    _, p2, _ = explain(net, face, temperature=4.0)
    assert np.allclose(p1.sum(), 1, atol=1e-5) and p2.max() < p1.max()  # a higher temperature flattens
    (tmp_path / "metrics.json").write_text(json.dumps({"temperature": 0.6}))
    assert Entry("r", tmp_path, tmp_path / "best.pt").temperature() == 0.6
    assert Entry("n", tmp_path / "none", tmp_path / "none.pt").temperature() == 1.0


def test_research_plots_of_your_own_runs(tmp_path, monkeypatch, data_dir) -> None:
    """`ferkit research-plots --models RUN` plots any FER+ run folder (before, only the catalogue's names), and
    refuses a run of another class set before writing anything."""
    import numpy as np

    import ferkit.embed.plots as plots
    from ferkit.cli import main
    from ferkit.training.data import load_npz
    from ferkit.training.trainer import TrainConfig, Trainer

    va = load_npz("val", "ferplus", data_dir).subset(np.arange(200))
    Trainer(TrainConfig(model="cnn4", data="ferplus", epochs=1, batch_size=64), tmp_path / "mine", train=va,
            val=va, quiet=True).run()
    f13 = load_npz("val", "fer2013", data_dir).subset(np.arange(200))
    Trainer(TrainConfig(model="cnn4", data="fer2013", epochs=1, batch_size=64), tmp_path / "f13", train=f13,
            val=f13, quiet=True).run()
    monkeypatch.setattr(plots, "subsets_figure", lambda images, path, **kw: path)  # (a face-mesh pass over test)
    out = tmp_path / "plots"
    assert main(["research-plots", "--out", str(out / "bad"), "-n", "20", "--models", str(tmp_path / "f13")]) == 2
    assert not (out / "bad").exists()
    assert main(["research-plots", "--out", str(out), "-n", "20", "--models", str(tmp_path / "mine")]) == 0
    assert {"tsne.png", "mean_faces.png", "explain_grid.png"} <= {p.name for p in out.iterdir()}
