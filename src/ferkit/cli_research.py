"""Research sub-commands: ``ferkit explain``, ``ferkit compare``, ``ferkit research-plots``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _load_face(path: str) -> np.ndarray:
    """A 48x48 grey face: small images are taken as face crops, larger ones are detected and aligned."""
    import cv2

    from .errors import InputError
    from .io import load_image

    img = load_image(path)  # (raises InputError with the reason; any file name)
    if max(img.shape[:2]) <= 96:
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA).astype(np.uint8)
    from .face import FaceMesh, align_faces, create_detector

    faces = create_detector().detect(img)
    if len(faces) == 0:
        raise InputError(f"no face found in {path}")
    areas = faces.boxes[:, 2] * faces.boxes[:, 3]
    faces = faces[int(areas.argmax()):int(areas.argmax()) + 1]
    marks = FaceMesh().run(img, faces)
    crops, _ = align_faces(img, faces, (48, 48), landmarks=marks)
    return cv2.cvtColor(crops[0], cv2.COLOR_BGR2GRAY)


def _onnx_model(spec: str) -> Any:
    """The shipped / exported ONNX model named by ``spec``, or None when it names a trained run instead."""
    from .errors import ModelError
    from .inference import ExpressionModel

    p = Path(spec)
    if p.is_dir() or p.suffix == ".pt":
        return None
    try:
        return ExpressionModel.load(spec)
    except ModelError:
        if p.suffix in (".onnx", ".json"):
            raise
        return None


def run_explain(args: argparse.Namespace) -> int:
    from .errors import InputError, OutputError
    from .explain import occlusion_map, render

    if not 1 <= args.patch <= 48 or args.stride < 1:
        raise InputError(f"--patch must be in 1..48 and --stride >= 1 (got {args.patch}, {args.stride})")
    face = _load_face(args.image)
    em = _onnx_model(args.model)
    if em is not None:  # shipped or exported ONNX: outputs only, so occlusion
        if args.method not in ("auto", "occlusion"):
            from .errors import ModelError

            raise ModelError(f"{args.model} is an ONNX model: only --method occlusion works without its torch run")
        heat, probs, info = occlusion_map(em.predict, face, patch=args.patch, stride=args.stride)
        classes, title = list(em.classes), f"{Path(args.model).stem} (ONNX)"
    else:
        import torch

        from .compare import resolve
        from .errors import UnknownModelError
        from .explain import explain
        from .labels import FER2013_CLASSES, FERPLUS_CLASSES

        torch.set_num_threads(1)
        try:
            entry = resolve(args.model)
        except UnknownModelError as e:
            from .inference import list_shipped

            shipped = ", ".join(m["name"] for m in list_shipped())
            raise UnknownModelError(f"{e}; shipped models: {shipped}") from None
        net, cfg = entry.load()
        temp = entry.temperature()  # calibrated probabilities, as the exported model would give
        boxes = None
        if getattr(net, "wants_boxes", False):  # regions placed by the face mesh on the intact face
            from .face.regions import mesh_region_boxes
            from .training.export import model_region_names

            boxes = torch.from_numpy(mesh_region_boxes(face[None], model_region_names(net)))

        def predict(faces: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(faces[:, None].astype(np.float32) / 255)
            with torch.no_grad():
                z = net(x) if boxes is None else net(x, boxes.expand(len(faces), -1, -1))
            return torch.softmax(z / temp, 1).numpy()

        info: dict = {}
        if args.method != "occlusion":
            try:
                heat, probs, info = explain(net, face, temp)
            except ValueError as exc:  # e.g. no spatial feature map for Grad-CAM (autoencoder heads)
                print(f"ferkit: note: {exc}: explained by occlusion instead", file=sys.stderr)
        if not info:
            heat, probs, info = occlusion_map(predict, face, patch=args.patch, stride=args.stride)
        classes = _run_classes(entry.metrics(), len(probs)) or list(FERPLUS_CLASSES if len(probs) == 8
                                                                     else FER2013_CLASSES)
        title = f"{entry.name} ({cfg['model']})"
    img = render(face, heat, probs, classes, title, info)
    try:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    from .io import write_image

    write_image(args.output, img)
    top = int(probs.argmax())
    print(f"{args.output}: {classes[top]} {probs[top]:.2f} ({info['method']})")
    return 0


def _run_classes(metrics: dict, n: int) -> list[str] | None:
    """The class names a run was trained on (from its metrics.json), when they number ``n``."""
    classes = metrics.get("classes")
    return list(classes) if isinstance(classes, list) and len(classes) == n else None


def run_compare(args: argparse.Namespace) -> int:
    from .compare import COMPARE_CACHE, MESH_CACHE, catalogue, compare, distinct_names, resolve

    entries = distinct_names([resolve(m) for m in args.models]) if args.models else catalogue()
    doc = compare(entries, args.out, args.cache or COMPARE_CACHE, speed=not args.no_speed,
                  mesh_cache=None if args.no_pose else (args.mesh_cache or MESH_CACHE), n_occ=args.occlusion_faces,
                  log=lambda s: print(s, file=sys.stderr, flush=True))
    print(Path(args.out) / "compare.md")
    best = max(doc["results"], key=lambda r: r["accuracy"])
    print(f"best accuracy: {best['name']} {best['accuracy']:.4f}")
    return 0


def run_plots(args: argparse.Namespace) -> int:
    from .embed.plots import make_plots
    from .errors import OutputError

    out = Path(args.out)
    probe = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not probe.is_dir() or not os.access(probe, os.W_OK):  # checked before the models load; made only on success
        raise OutputError(f"cannot write plots to {args.out}: {probe} is not a writable folder")
    for p in make_plots(args.out, n_tsne=args.n, models=args.models or None):
        print(p)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``explain``, ``compare`` and ``research-plots`` to ``ferkit``'s sub-parsers."""
    p = sub.add_parser("explain", help="heat map of what a trained model looks at on a face",
                       description="Attention rollout (transformers), region weights (RAN) or Grad-CAM (CNNs) "
                                   "of a trained run, or occlusion sensitivity of any model (shipped ones "
                                   "included), over the aligned 48 px face.")
    p.add_argument("image", metavar="IMAGE", help="face crop (<= 96 px: used as is) or photo (largest face)")
    p.add_argument("--model", required=True,
                   help="a shipped model (default, fer2013) or an exported .onnx file (explained by occlusion), or a "
                        "trained run: run directory, checkpoint or research catalogue name")
    p.add_argument("--method", choices=["auto", "occlusion"], default="auto",
                   help="auto: the model's own (attention rollout, RAN region weights or Grad-CAM for trained runs; "
                        "occlusion for ONNX models); occlusion: covered-patch sensitivity, for any model")
    p.add_argument("--patch", type=int, default=8, help="occlusion patch side in pixels of the 48 px face")
    p.add_argument("--stride", type=int, default=2, help="occlusion patch step in pixels")
    p.add_argument("-o", "--output", required=True, metavar="PNG")
    p.set_defaults(func=run_explain)

    c = sub.add_parser("compare", help="compare trained models on the FER+ test split in one table",
                       description="Per-class top-1/top-2, mean and variance across classes, accuracy, params, "
                                   "MACs, CPU faces/s and robustness-subset accuracy of every model and of their "
                                   "accuracy-weighted ensemble; writes compare.md/.json/.csv.")
    c.add_argument("--models", nargs="*",
                   help="training runs: run folders, checkpoints, or names of runs under $FERKIT_RUNS (default "
                        "/work/runs; without --models: all of them). Shipped .onnx models: ferkit eval --model")
    c.add_argument("--out", default="docs/research", help="folder for compare.md/.json/.csv (default docs/research)")
    c.add_argument("--cache", default=None, help="ONNX exports and logits cache")
    c.add_argument("--mesh-cache", default=None, help="face-mesh cache (pose subsets)")
    c.add_argument("--no-pose", action="store_true", help="skip the pose subsets (no face mesh run)")
    c.add_argument("--no-speed", action="store_true", help="skip the faces/s measurement")
    c.add_argument("--occlusion-faces", type=int, default=1000, help="faces in the occlusion sample")
    c.set_defaults(func=run_compare)

    r = sub.add_parser("research-plots", help="t-SNE/UMAP of embeddings, mean faces per class, explanation grid")
    r.add_argument("--out", default="docs/research", help="folder for the plots (default docs/research)")
    r.add_argument("-n", type=int, default=1500, help="test faces in the embedding plots")
    r.add_argument("--models", nargs="+", metavar="RUN",
                   help="FER+ training runs to plot: run folders, checkpoints or catalogue names (default: the "
                        "catalogue's research models under $FERKIT_RUNS)")
    r.set_defaults(func=run_plots)
