"""Figures: t-SNE (and UMAP when ``umap-learn`` is installed) of embeddings coloured by label, per-class mean
faces ("stacked faces"), and a grid of explanation heat maps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _plt():  # noqa: ANN202 - matplotlib pyplot module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def project_2d(z: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """2-D projection of embeddings ``(n, d)`` with t-SNE (PCA-50 first) or UMAP."""
    from sklearn.decomposition import PCA

    zz = (z - z.mean(0)) / (z.std(0) + 1e-6)
    k = min(50, len(zz) - 1)
    if zz.shape[1] > k >= 2:
        zz = PCA(k, random_state=seed).fit_transform(zz)
    if method == "umap":
        import umap  # optional dependency

        return umap.UMAP(random_state=seed).fit_transform(zz)
    from sklearn.manifold import TSNE

    return TSNE(2, init="pca", perplexity=min(30.0, max(2.0, (len(zz) - 1) / 3)), random_state=seed).fit_transform(zz)


def embedding_figure(embeddings: dict[str, np.ndarray], labels: np.ndarray, classes: list[str], path: str | Path,
                     method: str = "tsne", seed: int = 0) -> Path:
    """One scatter panel per model of the 2-D projection of its embeddings, coloured by label."""
    plt = _plt()
    n = len(embeddings)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4 * rows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, z) in zip(axes.flat, embeddings.items()):
        xy = project_2d(z, method, seed)
        for c, cname in enumerate(classes):
            m = labels == c
            ax.scatter(xy[m, 0], xy[m, 1], s=3, color=cmap(c), label=cname, alpha=0.7)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(markerscale=4, fontsize=7, loc="best")
    fig.suptitle(f"{method.upper()} of embeddings (FER+ test faces, coloured by label)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def mean_faces(images: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean face per class ``(n_classes, h, w)`` float32 (NaN for an empty class)."""
    out = np.full((n_classes, *images.shape[1:]), np.nan, np.float32)
    for c in range(n_classes):
        m = labels == c
        if m.any():
            out[c] = images[m].astype(np.float32).mean(0)
    return out


def mean_faces_figure(images: np.ndarray, labels: np.ndarray, classes: list[str], path: str | Path) -> Path:
    """The "stacked faces" image: the mean aligned face of each class, with its count."""
    plt = _plt()
    faces = mean_faces(images, labels, len(classes))
    fig, axes = plt.subplots(1, len(classes), figsize=(1.7 * len(classes), 2.1))
    for ax, f, c, i in zip(axes, faces, classes, range(len(classes))):
        ax.imshow(f, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{c}\n(n={int((labels == i).sum())})", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def explain_grid(models: dict[str, object], faces: np.ndarray, labels: list[str], classes: list[str],
                 path: str | Path) -> Path:
    """Rows = models, columns = faces: heat map over each face, title = predicted class."""
    from ..explain import explain

    plt = _plt()
    fig, axes = plt.subplots(len(models), len(faces), figsize=(1.6 * len(faces), 1.75 * len(models)), squeeze=False)
    for i, (name, net) in enumerate(models.items()):
        for j, f in enumerate(faces):
            heat, probs, info = explain(net, f)  # type: ignore[arg-type]
            ax = axes[i, j]
            ax.imshow(f, cmap="gray")
            ax.imshow(heat, cmap="jet", alpha=0.45)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{classes[int(probs.argmax())]} ({labels[j]})", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{name}\n{info['method'].split(' (')[0]}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def subsets_figure(test_images: np.ndarray, path: str | Path, n: int = 10,
                   mesh_cache: str | Path | None = None) -> Path:
    """Rows of example faces: pose subsets (frontal, yaw, roll) and the three occluders."""
    import cv2

    from ..face.regions import cached_mesh
    from ..robustness import occlude, pose_subsets

    if mesh_cache is None:
        from ..compare import MESH_CACHE

        mesh_cache = MESH_CACHE
    pts, pres = cached_mesh(test_images, mesh_cache)
    sub = pose_subsets(pts, pres)
    rows = [np.hstack(list(test_images[sub[k][:n]])) for k in ("pose_frontal", "pose_yaw", "pose_roll")]
    rows += [np.hstack(list(occlude(test_images[:n], k))) for k in ("eyes", "mouth", "random")]
    img = cv2.resize(np.vstack(rows), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    labels = ["pose_frontal", "pose_yaw", "pose_roll", "occ_eyes", "occ_mouth", "occ_random"]
    img = np.hstack([np.full((img.shape[0], 110), 255, np.uint8), img])
    for i, t in enumerate(labels):
        cv2.putText(img, t, (4, 96 * i + 52), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 0, 1, cv2.LINE_AA)
    from ..io import write_image

    write_image(path, img)
    return Path(path)


def make_plots(out_dir: str | Path = "docs/research", n_tsne: int = 1500, seed: int = 0,
               models: list[str] | None = None) -> list[Path]:
    """All research figures: ``tsne.png`` (+ ``umap.png``), ``mean_faces.png``, ``subsets.png``,
    ``explain_grid.png``, of the trained catalogue's research models or of ``models`` (catalogue names, run
    folders or checkpoints of FER+ runs, as ``ferkit compare --models`` takes them)."""
    import importlib.util

    import torch

    from ..compare import catalogue, distinct_names, resolve
    from ..errors import InputError, ModelError
    from ..labels import FERPLUS_CLASSES
    from ..training.data import load_npz

    if n_tsne < 10:
        raise InputError(f"-n must be at least 10 faces for a projection, got {n_tsne}")
    torch.set_num_threads(1)
    if models:
        chosen = distinct_names([resolve(m) for m in models])
        nets = {e.name: e.load()[0] for e in chosen}
        probe = torch.zeros(1, 1, 48, 48)
        for e in chosen:
            net = nets[e.name]
            metrics = e.run_dir / "metrics.json"
            classes = json.loads(metrics.read_text()).get("classes") if metrics.is_file() else None
            with torch.no_grad():  # (a run without metrics.json: its output width tells)
                width = int(net(probe).shape[-1]) if not getattr(net, "wants_boxes", False) else len(FERPLUS_CLASSES)
            if (classes is not None and tuple(classes) != tuple(FERPLUS_CLASSES)) or width != len(FERPLUS_CLASSES):
                raise ModelError(f"{e.name} predicts {width} classes: the plots are of FER+ models (8 classes) on "
                                 "the FER+ test faces")
    else:
        wanted = ["ferplus_rf48_kd", "ferplus_ran_cpu", "ferplus_ranmesh_cpu", "ferplus_lmt_cpu",
                  "ferplus_vit_cpu", "ferplus_aeconv_semi", "ferplus_aedense_semi"]
        entries = {e.name: e for e in catalogue()}
        nets = {n: entries[n].load()[0] for n in wanted if n in entries}
        if not nets:
            raise ModelError(f"none of the catalogue's research models ({', '.join(wanted)}) is trained here: name "
                             "your own FER+ runs with --models RUN_DIR ...")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    te, tr = load_npz("test", "ferplus"), load_npz("train", "ferplus")
    classes = list(te.classes)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(np.flatnonzero(te.labels >= 0), min(n_tsne, int((te.labels >= 0).sum())), replace=False))
    x = torch.from_numpy(te.images[idx][:, None].astype(np.float32) / 255)
    embs = {}
    with torch.no_grad():
        for n, net in nets.items():
            bx = None
            if getattr(net, "wants_boxes", False):  # mesh-placed region crops: boxes from the face mesh
                from ..face.regions import mesh_region_boxes

                bx = torch.from_numpy(mesh_region_boxes(te.images[idx], net.backbone.region_names))
            embs[n] = torch.cat([net.features(x[i:i + 256], None if bx is None else bx[i:i + 256])
                                 for i in range(0, len(x), 256)]).numpy()
    paths = [embedding_figure(embs, te.labels[idx], classes, out_dir / "tsne.png", "tsne", seed)]
    if importlib.util.find_spec("umap") is not None:
        paths.append(embedding_figure(embs, te.labels[idx], classes, out_dir / "umap.png", "umap", seed))
    else:
        print("ferkit: umap-learn is not installed: t-SNE only (pip install umap-learn for umap.png)",
              file=sys.stderr)
    m = tr.labels >= 0
    paths.append(mean_faces_figure(tr.images[m], tr.labels[m], classes, out_dir / "mean_faces.png"))
    paths.append(subsets_figure(te.images, out_dir / "subsets.png"))
    pick = [int(np.flatnonzero(te.labels == c)[0]) for c in range(len(classes))]
    grid_nets = {n: nets[n] for n in ("ferplus_vit_cpu", "ferplus_lmt_cpu", "ferplus_ran_cpu", "ferplus_ranmesh_cpu",
                                      "ferplus_rf48_kd")
                 if n in nets} if not models else dict(list(nets.items())[:5])
    if grid_nets:
        paths.append(explain_grid(grid_nets, te.images[pick], [classes[te.labels[i]] for i in pick], classes,
                                  out_dir / "explain_grid.png"))
    return paths
