"""Research sub-commands: ``ferkit explain``, ``ferkit compare``, ``ferkit research-plots``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _load_face(path: str) -> np.ndarray:
    """A 48x48 grey face: small images are taken as face crops, larger ones are detected and aligned."""
    import cv2

    from .errors import InputError

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}")
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


def run_explain(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from .compare import resolve
    from .explain import explain, render

    torch.set_num_threads(1)
    face = _load_face(args.image)
    entry = resolve(args.model)
    net, cfg = entry.load()
    from .labels import FER2013_CLASSES, FERPLUS_CLASSES

    heat, probs, info = explain(net, face)
    classes = list(FERPLUS_CLASSES if len(probs) == 8 else FER2013_CLASSES)
    img = render(face, heat, probs, classes, f"{entry.name} ({cfg['model']})", info)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.output, img)
    top = int(probs.argmax())
    print(f"{args.output}: {classes[top]} {probs[top]:.2f} ({info['method']})")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from .compare import COMPARE_CACHE, MESH_CACHE, catalogue, compare, resolve

    entries = [resolve(m) for m in args.models] if args.models else catalogue()
    doc = compare(entries, args.out, args.cache or COMPARE_CACHE, speed=not args.no_speed,
                  mesh_cache=None if args.no_pose else (args.mesh_cache or MESH_CACHE), n_occ=args.occlusion_faces,
                  log=lambda s: print(s, file=sys.stderr, flush=True))
    print(Path(args.out) / "compare.md")
    best = max(doc["results"], key=lambda r: r["accuracy"])
    print(f"best accuracy: {best['name']} {best['accuracy']:.4f}")
    return 0


def run_plots(args: argparse.Namespace) -> int:
    from .embed.plots import make_plots

    for p in make_plots(args.out, n_tsne=args.n):
        print(p)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``explain``, ``compare`` and ``research-plots`` to ``ferkit``'s sub-parsers."""
    p = sub.add_parser("explain", help="heat map of what a trained model looks at on a face",
                       description="Attention rollout (transformers), region weights (RAN) or Grad-CAM (CNNs) "
                                   "over the aligned 48 px face.")
    p.add_argument("image", metavar="IMAGE", help="face crop (<= 96 px: used as is) or photo (largest face)")
    p.add_argument("--model", required=True, help="trained model: catalogue name (see `ferkit compare --help`), "
                                                   "run directory or checkpoint")
    p.add_argument("-o", "--output", required=True, metavar="PNG")
    p.set_defaults(func=run_explain)

    c = sub.add_parser("compare", help="compare trained models on the FER+ test split in one table",
                       description="Per-class top-1/top-2, mean and variance across classes, accuracy, params, "
                                   "MACs, CPU faces/s and robustness-subset accuracy of every model and of their "
                                   "accuracy-weighted ensemble; writes compare.md/.json/.csv.")
    c.add_argument("--models", nargs="*", help="catalogue names / run dirs (default: all trained models)")
    c.add_argument("--out", default="docs/research")
    c.add_argument("--cache", default=None, help="ONNX exports and logits cache")
    c.add_argument("--mesh-cache", default=None, help="face-mesh cache (pose subsets)")
    c.add_argument("--no-pose", action="store_true", help="skip the pose subsets (no face mesh run)")
    c.add_argument("--no-speed", action="store_true", help="skip the faces/s measurement")
    c.add_argument("--occlusion-faces", type=int, default=1000, help="faces in the occlusion sample")
    c.set_defaults(func=run_compare)

    r = sub.add_parser("research-plots", help="t-SNE/UMAP of embeddings, mean faces per class, explanation grid")
    r.add_argument("--out", default="docs/research")
    r.add_argument("-n", type=int, default=1500, help="test faces in the embedding plots")
    r.set_defaults(func=run_plots)
