"""Training loop: config, run directory (config, log, metrics, checkpoints), early stopping on the
validation split, EMA, two-stage fine-tuning, resumption, k-fold cross-validation."""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import random
import shutil
import sys
import time
import typing
import warnings
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..errors import ConfigError, DatasetError
from ..evaluation.metrics import classification_report, fit_temperature, softmax
from ..models import check_model_arguments, create_model, model_arguments
from ..models.regions import mesh_region_boxes
from .augment import AugmentConfig, CloseCropped, augment, close_crop, crop_boxes
from .data import FaceSet, load_dataset, normalise_labels
from .options import CHANNELS, CHOICES, LABEL_SETS
from .schemes import class_weights, scheme_loss


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` in the run directory)."""

    model: str = "resnet_fast"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = "ferplus"  # ferplus | fer2013 | path (npz folder, Kaggle CSV, path CSV, image folder)
    labels: str | None = None  # label set for the npz files: ferplus | fer2013
    data_dir: str | None = None
    scheme: str = "cel"  # mv | ml | pld | cel
    ml_threshold: float = 0.3
    drop_single_votes: bool = False
    label_smoothing: float = 0.0
    channels: int = 1  # 1 = grey, 3 = RGB
    epochs: int = 40
    batch_size: int = 128
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    schedule: str = "cosine"  # cosine | step | constant
    warmup_epochs: float = 1.0
    head_epochs: int = 0  # > 0: train only the classifier head first (transfer learning)
    head_lr: float = 3e-3
    ema: float = 0.0  # EMA decay of the weights (0 = off); evaluation and checkpoints use the EMA
    patience: int = 15  # early stopping on validation accuracy
    balance: str = "none"  # none | undersample | oversample
    class_weight_power: float = 0.0  # > 0: class-weighted loss, (n / (K n_k)) ** power
    minority_aug: bool = False  # extra rotation + noise for classes below the median frequency
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    mixup: float = 0.0  # mixup alpha (0 = off)
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    channels_last: bool = True
    workers_threads: int = 0  # torch CPU threads (0 = leave default)
    folds: int = 0  # > 1: stratified k-fold CV on the training split
    fold: int = -1  # internal: which fold this run is
    deadline_min: float = 0.0  # > 0: fit the epoch count to this wall-clock budget after epoch 1
    drop_unscored_train: bool = True  # FER+: drop training faces whose plurality is unknown/not-a-face/tie
    soft_targets: str | None = None  # .npy (n_train, K) teacher probabilities for knowledge distillation
    soft_weight: float = 0.5  # weight of the teacher distribution against the label/vote distribution
    # Online distillation: teacher runs ("run_dir" or "run_dir:checkpoint") see every augmented batch;
    # loss = (1 - kd_weight) * label loss + kd_weight * T^2 KL(teacher_T || student_T).
    teachers: list[str] = field(default_factory=list)
    kd_weight: float = 0.5
    kd_temperature: float = 2.0
    # > 0 (with teachers): augment every training face this many times once, cache the views (uint8) and the
    # teachers' outputs on them, then train on the cached views with no teacher forwards (full-speed epochs).
    kd_views: int = 0
    # Warm start (fine-tuning): begin from the weights of a trained run, "RUN" (its best.pt) or "RUN:CHECKPOINT";
    # the model and its arguments must be the same. The optimizer, schedule and EMA start afresh.
    init: str | None = None
    max_train: int = 0  # > 0: use only the first N training images (tests, smoke runs)
    max_eval: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):  # TrainConfig(augment={"crop": 0.9}) as from_dict / config files
            try:
                self.augment = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v
                                                for k, v in self.augment.items()})
            except TypeError as exc:
                raise ConfigError(f"augment: {exc}; known keys: "
                                  f"{', '.join(f.name for f in fields(AugmentConfig))}") from None
        _check_types(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown config keys: {sorted(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)  # (an augment dict becomes an AugmentConfig in __post_init__)

    def check(self) -> None:
        """Refuse values and combinations that cannot train (a clear error instead of a crash deep in torch)."""
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        _check_types(self)  # (again: fields may have been set after construction)
        need(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.lr > 0 and self.head_lr > 0, f"the learning rate must be > 0, got {self.lr}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(0 <= self.ema < 1, f"ema must be in [0, 1), got {self.ema}")
        need(self.patience >= 0 and self.head_epochs >= 0, "patience and head_epochs must be >= 0")
        need(self.max_train >= 0 and self.max_eval >= 0, "max_train and max_eval must be >= 0 (0: all)")
        need(self.folds == 0 or self.folds >= 2, f"folds must be 0 (off) or >= 2, got {self.folds}")
        need(0 < self.augment.crop <= 1, f"crop must be in (0, 1] (the central fraction kept), got "
                                         f"{self.augment.crop}")
        need(self.mixup >= 0 and self.label_smoothing >= 0 and self.deadline_min >= 0,
             "mixup, label_smoothing and deadline_min must be >= 0")
        need(self.kd_views >= 0, f"kd_views must be >= 0, got {self.kd_views}")
        need(0 <= self.soft_weight <= 1, f"soft_weight must be in [0, 1], got {self.soft_weight}")
        need(not self.kd_views or bool(self.teachers), "kd_views needs teachers (--teacher RUN): it caches their "
                                                       "outputs on augmented views")
        need(self.channels in CHANNELS, f"channels must be 1 or 3, got {self.channels}")
        need(self.labels in (None, *LABEL_SETS), f"labels must be one of {', '.join(LABEL_SETS)} (or null), got "
                                                 f"{self.labels!r}")
        need(self.labels is None or self.data not in LABEL_SETS or self.labels == self.data,
             f"data {self.data!r} with labels {self.labels!r} name different label sets: use data {self.labels!r}")
        for key, allowed in CHOICES.items():
            need(getattr(self, key) in allowed, f"{key} must be one of {', '.join(allowed)}, got "
                                                f"{getattr(self, key)!r}")
        need(self.device in ("auto", "cpu") or self.device.startswith("cuda"),
             f"device must be auto, cpu or cuda[:N], got {self.device!r}")
        need(isinstance(self.augment, AugmentConfig), "augment must be an AugmentConfig (TrainConfig.from_dict "
                                                      "takes a dict)")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_types(cfg: Any, prefix: str = "") -> None:
    """Check the fields of a config dataclass against their annotations (the values of JSON / YAML / TOML files are
    not checked by the parser): int fields take integers (not bools or floats), float fields numbers or numeric
    strings (YAML reads ``1e-3`` as a string), converted; the augment settings are checked as ``augment.KEY``."""
    for f in fields(cfg):
        key, value = prefix + f.name, getattr(cfg, f.name)
        if isinstance(value, AugmentConfig):
            _check_types(value, f"{key}.")
            continue
        hint = _hints(type(cfg))[f.name]
        if typing.get_origin(hint) is tuple:
            if not isinstance(value, (tuple, list)) or len(value) != len(typing.get_args(hint)):
                raise ConfigError(f"{key} must be a list of {len(typing.get_args(hint))} numbers, got {value!r}")
            setattr(cfg, f.name, tuple(_typed_value(f"{key}[{i}]", v, t)
                                       for i, (v, t) in enumerate(zip(value, typing.get_args(hint), strict=True))))
        else:
            setattr(cfg, f.name, _typed_value(key, value, hint))


def _typed_value(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` of config key ``key`` (ConfigError naming both if it is not one)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, type(str | None)) and type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if hint is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        raise ConfigError(f"{key} must be a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number  # (YAML reads 1e-3 without a dot as a string)
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            return float(value)
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
        raise ConfigError(f"{key} must be a string, got {value!r}")
    origin = typing.get_origin(hint)
    if origin is dict and not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping of names to values, got {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, os.PathLike)) for v in value):
            raise ConfigError(f"{key} must be a list of strings, got {value!r}")
        return [os.fspath(v) for v in value]
    return value


#: Settings a run cannot change when it resumes from ``last.pt`` (the checkpoint or the data would not fit).
RESUME_FIXED = frozenset({"model", "model_kwargs", "data", "labels", "channels", "scheme", "ml_threshold",
                          "drop_single_votes", "drop_unscored_train", "folds", "fold", "max_train", "soft_targets",
                          "kd_views", "head_epochs"})
#: Augmentation settings a run cannot change when it resumes (``augment.crop`` is applied at test time and built into
#: the export: a model trained on one crop would be evaluated and shipped with another).
RESUME_FIXED_AUGMENT = frozenset({"crop"})


def _has_votes(ds: Any) -> bool:
    """Whether a dataset's targets are vote distributions (FER+), not one-hot labels."""
    t = np.asarray(ds.targets)
    return bool(len(t)) and not bool(np.all((t == 0) | (t == 1)) and np.all(t.sum(1) == 1))


def blend_soft_targets(ds: FaceSet, cfg: TrainConfig) -> None:
    """Mix the teacher probabilities of ``cfg.soft_targets`` (one row per training face, as loaded) into the
    targets of ``ds``: ``(1 - soft_weight) * votes + soft_weight * teacher``."""
    path = cfg.soft_targets
    try:
        soft = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the soft targets {path}: {' '.join(str(exc).split())} (expected a .npy "
                          "of teacher probabilities from tools/teacher_targets.py)") from None
    if soft.shape != ds.targets.shape or not np.issubdtype(soft.dtype, np.floating):
        raise ConfigError(f"soft targets {path} ({soft.dtype} {soft.shape}) do not match the training set "
                          f"{ds.targets.shape}: one row of {len(ds.classes)} class probabilities per training face")
    votes = ds.targets / np.maximum(ds.targets.sum(1, keepdims=True), 1e-8)
    ds.targets = ((1 - cfg.soft_weight) * votes + cfg.soft_weight * soft.astype(np.float32)).astype(np.float32)


def _has_grouped_conv(model: nn.Module) -> bool:
    """Whether the model has grouped (e.g. depthwise) convolutions, whose channels_last backward fails on CPU."""
    return any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules())


def _same_path(key: str, a: Any, b: Any) -> bool:
    """Whether two spellings of a path setting name the same file (a run saved a relative path, now absolute)."""
    if key not in ("data", "data_dir", "soft_targets", "init") or not (isinstance(a, str) and isinstance(b, str)):
        return False
    if key == "init":  # RUN[:CHECKPOINT]
        (a, _, ca), (b, _, cb) = a.partition(":"), b.partition(":")
        if ca != cb:
            return False
    return Path(a).resolve() == Path(b).resolve()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: this torch has no CUDA device (device='auto' picks the CPU)")
    return torch.device(name)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_tensor_images(images: np.ndarray, channels: int) -> torch.Tensor:
    """uint8 ``(n, h, w)`` grey or ``(n, h, w, 3)`` BGR -> uint8 ``(n, c, h, w)``."""
    t = torch.from_numpy(np.ascontiguousarray(images))
    if t.ndim == 3:
        t = t[:, None]
        if channels == 3:
            t = t.expand(-1, 3, -1, -1)
    else:
        t = t.permute(0, 3, 1, 2)
        if channels == 1:
            t = (0.114 * t[:, 0:1] + 0.587 * t[:, 1:2] + 0.299 * t[:, 2:3]).round().to(torch.uint8)
    return t.contiguous()


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Indices of ``k`` validation folds with the class mix of the whole set."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        for i, part in enumerate(np.array_split(idx, k)):
            folds[(i + int(c)) % k].extend(part.tolist())
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


class ModelEMA:
    """Exponential moving average of a model's weights and buffers, updated with a few fused multi-tensor
    kernels (the per-step cost matters on a GPU, where training small nets is launch-bound)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        self.decay = decay
        for p in self.module.parameters():
            p.requires_grad_(False)
        # state_dict() tensors share storage with the live parameters and buffers (optimizer steps and
        # load_state_dict work in place), so the pairs stay valid as long as neither model is moved to another
        # device or memory format afterwards.
        ema, live = self.module.state_dict(), model.state_dict()
        floats = [k for k, v in ema.items() if v.dtype.is_floating_point]
        others = [k for k, v in ema.items() if not v.dtype.is_floating_point]
        self._ema_f, self._live_f = [ema[k] for k in floats], [live[k] for k in floats]
        self._ema_o, self._live_o = [ema[k] for k in others], [live[k] for k in others]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards ``model`` (the model this EMA was built from)."""
        if self._ema_f:
            torch._foreach_lerp_(self._ema_f, self._live_f, 1.0 - self.decay)
        for e, v in zip(self._ema_o, self._live_o):
            e.copy_(v)


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The final classifier of a ferkit network (``fc`` or ``_fc``)."""
    bb = getattr(model, "backbone", model)
    for name in ("_fc", "fc", "out"):
        if hasattr(bb, name):
            return list(getattr(bb, name).parameters())
    raise ValueError("model has no classifier head named fc/_fc/out")


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    batch: int = 512,
    crop: float = 1.0,
    amp: bool = False,
    flip: bool = False,
    boxes: torch.Tensor | None = None,
) -> np.ndarray:
    """Logits for uint8 ``(n, c, h, w)`` images (optionally averaged with the mirrored image); ``boxes``
    ``(n, R, 4)``: per-image region boxes for models that take them."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = images[i : i + batch].to(device, non_blocking=True).float().div_(255)
        x = close_crop(x, crop)
        bx = None if boxes is None else crop_boxes(boxes[i : i + batch].to(device), crop, int(x.shape[-1]))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            z = (model(x) if bx is None else model(x, bx)).float()
            if flip:
                fb = None if bx is None else torch.cat([1 - bx[..., :1], bx[..., 1:]], -1)
                xf = torch.flip(x, dims=[3])
                z = (z + (model(xf) if fb is None else model(xf, fb)).float()) / 2
        out.append(z.cpu())
    return torch.cat(out).numpy()


def _lr_factor(cfg: TrainConfig, epoch_f: float, total: int) -> float:
    if cfg.warmup_epochs > 0 and epoch_f < cfg.warmup_epochs:
        return max(epoch_f / cfg.warmup_epochs, 0.01)
    if cfg.schedule == "cosine":
        t = (epoch_f - cfg.warmup_epochs) / max(total - cfg.warmup_epochs, 1e-8)
        return 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
    if cfg.schedule == "step":
        return 0.1 ** int(epoch_f / max(total / 3, 1))
    return 1.0


class Trainer:
    """Trains one model; ``run()`` returns the final metrics dict. Resumes from ``last.pt`` if present."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        train: FaceSet | None = None,
        val: FaceSet | None = None,
        quiet: bool = False,
    ) -> None:
        self.t_start = time.time()  # wall time and deadlines count data loading and the view bank too
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.quiet = quiet
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if cfg.workers_threads:
            torch.set_num_threads(cfg.workers_threads)
        cfg.check()
        set_seed(cfg.seed)
        check_model_arguments(cfg.model, cfg.model_kwargs, hide=frozenset({"num_classes", "in_chans"}))  # (early)
        self.train_set = train if train is not None else load_dataset(cfg.data, "train", cfg.labels, cfg.data_dir)
        self.val_set = val if val is not None else load_dataset(cfg.data, "val", cfg.labels, cfg.data_dir)
        if val is None and (self.val_set.all_rows or self.val_set.source == self.train_set.source):
            raise DatasetError(f"{cfg.data} has no separate validation split, so model selection would use the "
                               "training data: give the CSV a split column (train / val / test)")
        if self.val_set.classes != self.train_set.classes:
            raise DatasetError(f"the validation classes {list(self.val_set.classes)} differ from the training "
                               f"classes {list(self.train_set.classes)}")
        if cfg.soft_targets and cfg.drop_single_votes:
            raise ConfigError("drop_single_votes needs raw vote counts; soft_targets blends them into probabilities")
        if cfg.scheme == "ml" and cfg.label_smoothing > 0:
            raise ConfigError("label smoothing does not apply to the multi-label (ml) scheme")
        if cfg.scheme in ("ml", "pld") and not _has_votes(self.train_set):
            what = ("PLD draws that label every time (plain cross-entropy)" if cfg.scheme == "pld"
                    else "ML becomes one-vs-rest on that label")
            warnings.warn(f"the {cfg.scheme} scheme learns from crowd votes, and {cfg.data} has one label per "
                          f"face: {what}", stacklevel=2)
        if cfg.soft_targets and train is None:  # (a given training set has them blended in already: k-fold)
            blend_soft_targets(self.train_set, cfg)
        if cfg.drop_unscored_train:
            keep = self.train_set.labels >= 0
            if not keep.all():
                self.train_set = self.train_set.subset(np.flatnonzero(keep))
        if cfg.max_train:
            self.train_set = self.train_set.subset(np.arange(min(cfg.max_train, len(self.train_set))))
        if cfg.max_eval:
            self.val_set = self.val_set.subset(np.arange(min(cfg.max_eval, len(self.val_set))))
        self.classes = self.train_set.classes
        k = len(self.classes)
        kwargs = dict(cfg.model_kwargs)
        kwargs.setdefault("num_classes", k)
        kwargs.setdefault("in_chans", cfg.channels)
        if cfg.init and "pretrained" in model_arguments(cfg.model):
            kwargs["pretrained"] = False  # (the warm start replaces every weight)
        self.model = create_model(cfg.model, **kwargs).to(self.device)
        if cfg.init and not (self.run_dir / "last.pt").is_file():  # (a resumed run has its weights in last.pt)
            self._warm_start(cfg.init)
        # channels_last speeds up convs (1.13-1.26x for resnet_fast w48 on this CPU: bench/bench_train_layout.py),
        # but depthwise-conv backward crashes on CPU in torch 2.13: on CPU only without grouped convolutions.
        self.channels_last = cfg.channels_last and (self.device.type == "cuda" or not _has_grouped_conv(self.model))
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = ModelEMA(self.model, cfg.ema) if cfg.ema > 0 else None
        dev = self.device
        self.x_train = to_tensor_images(self.train_set.images, cfg.channels).to(dev)
        self.t_train = torch.from_numpy(self.train_set.targets).to(dev)
        self.y_train = self.train_set.labels
        self.x_val = to_tensor_images(self.val_set.images, cfg.channels)
        # Models with per-image region crops (RAN placement="mesh") get boxes from the face mesh run once on
        # every training / validation face (cached); augmentation moves them with the faces.
        self.b_train = self.b_val = None
        if getattr(self.model, "wants_boxes", False):
            names = self.model.backbone.region_names
            self.b_train = torch.from_numpy(mesh_region_boxes(self.train_set.images, names)).to(dev)
            self.b_val = torch.from_numpy(mesh_region_boxes(self.val_set.images, names))
        counts = self.train_set.class_counts()
        self.weights = (
            torch.from_numpy(class_weights(counts, cfg.class_weight_power)).to(dev)
            if cfg.class_weight_power > 0
            else None
        )
        self.minority = torch.from_numpy(counts < np.median(counts)).to(dev)
        self.teachers = self._load_teachers()
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(cfg.seed)
        self.log_path = self.run_dir / "log.jsonl"
        self.bank = self.bank_probs = None
        if cfg.kd_views > 0 and self.teachers:
            self._build_view_bank()

    def _warm_start(self, spec: str) -> None:
        """Load the weights of a trained run (``RUN`` or ``RUN:CHECKPOINT``) into the fresh model: same architecture,
        classes (names and order) and close crop; arguments that keep every weight's shape (input size, dropout)
        may differ."""
        from .export import run_weights

        run, _, ck_name = spec.partition(":")
        sd, saved = run_weights(run, ck_name or None)
        if saved.get("model") != self.cfg.model:
            raise ConfigError(f"init {spec} is a {saved.get('model')}, this run trains {self.cfg.model}: warm starts "
                              "need the same model")
        crop = float(saved.get("augment", {}).get("crop", 1.0))
        if crop != self.cfg.augment.crop:
            raise ConfigError(f"init {spec} was trained on close crops of {crop}, this run uses "
                              f"{self.cfg.augment.crop}: fine-tune with the same --crop")
        try:
            classes = json.loads((Path(run) / "metrics.json").read_text()).get("classes")
        except (OSError, ValueError):
            classes = None  # (an unfinished run: the weight shapes below still have to fit)
        if classes is not None and list(classes) != list(self.classes):
            raise ConfigError(f"init {spec} predicts {classes}, this data has {list(self.classes)}: warm starts "
                              "need the same classes in the same order")
        own = self.model.state_dict()
        bad = sorted(k for k in set(own) | set(sd) if k not in own or k not in sd or own[k].shape != sd[k].shape)
        if bad:
            raise ConfigError(f"init {spec} does not fit this model ({len(self.classes)} classes, model arguments "
                              f"{self.cfg.model_kwargs}): {len(bad)} weights differ, e.g. {bad[0]}")
        self.model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()})

    def _load_teachers(self) -> list[nn.Module]:
        """Frozen teacher models for online distillation (``cfg.teachers``), on the training device."""
        from .export import load_run_model

        out = []
        for spec in self.cfg.teachers:
            run, _, ck = spec.partition(":")
            m, _ = load_run_model(run, ck or None)
            t_crop = m.crop if isinstance(m, CloseCropped) else 1.0
            if t_crop != self.cfg.augment.crop:
                raise ConfigError(f"teacher {spec} was trained on close crops of {t_crop}, this run uses "
                                 f"{self.cfg.augment.crop}: distil between runs with the same crop")
            if t_crop < 1.0:
                m = m.model  # the student's batches are cropped already
            with torch.no_grad():
                n_out = m(torch.zeros(1, self.cfg.channels, 48, 48)).shape[1]
            if n_out != len(self.classes):
                raise ConfigError(f"teacher {spec} predicts {n_out} classes, the data has {len(self.classes)}")
            for p in m.parameters():
                p.requires_grad_(False)
            m = m.to(self.device).eval()
            out.append(m.to(memory_format=torch.channels_last) if self.channels_last else m)
        return out

    def teacher_probs(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """Mean teacher probability at temperature ``T`` (``cfg.kd_temperature``)."""
        t = self.cfg.kd_temperature
        bf16 = self.cfg.amp and self.device.type == "cuda"
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            probs = 0
            for m in self.teachers:
                z = m(x, boxes) if boxes is not None and getattr(m, "wants_boxes", False) else m(x)
                probs = probs + torch.softmax(z.float() / t, dim=1)
        return probs / len(self.teachers)

    def distill_loss(self, logits: torch.Tensor, x: torch.Tensor, boxes: torch.Tensor | None,
                     probs: torch.Tensor | None = None) -> torch.Tensor:
        """``T^2 KL(p_teacher || p_student)`` at temperature ``T``, teachers averaged in probability (or the
        given cached ``probs``)."""
        t = self.cfg.kd_temperature
        if probs is None:
            probs = self.teacher_probs(x, boxes)
        return F.kl_div(F.log_softmax(logits.float() / t, dim=1), probs, reduction="batchmean") * t * t

    def _build_view_bank(self) -> None:
        """``cfg.kd_views`` augmented views of every training face (uint8, on the training device) and the
        teachers' probabilities on exactly those pixels; the teachers are freed afterwards."""
        cfg, dev = self.cfg, self.device
        if self.b_train is not None or cfg.mixup > 0:
            raise ConfigError("kd_views does not support region-box models or mixup")
        t0 = time.time()
        n, k = len(self.x_train), len(self.classes)
        self.bank = torch.empty((cfg.kd_views, *self.x_train.shape), dtype=torch.uint8, device=dev)
        self.bank_probs = torch.empty((cfg.kd_views, n, k), dtype=torch.float16, device=dev)
        gen = torch.Generator(device=dev)
        gen.manual_seed(cfg.seed + 7919)  # the same views when a run resumes
        chunk = 1024
        for v in tqdm(range(cfg.kd_views), desc="view bank", leave=False, disable=self.quiet):
            for i in range(0, n, chunk):
                x = self.x_train[i : i + chunk].float().div_(255)
                strong = self.minority[self.t_train[i : i + chunk].argmax(1)] if cfg.minority_aug else None
                q = (augment(x, cfg.augment, strong, gen) * 255).round_().to(torch.uint8)
                self.bank[v, i : i + chunk] = q
                xq = q.float().div_(255)
                if self.channels_last:
                    xq = xq.contiguous(memory_format=torch.channels_last)
                self.bank_probs[v, i : i + chunk] = self.teacher_probs(xq).half()
        self.teachers = []
        self.log({"note": f"view bank: {cfg.kd_views} views x {n} faces with teacher outputs in "
                          f"{time.time() - t0:.1f} s"})

    # -- sampling ---------------------------------------------------------------------------
    def epoch_indices(self, rng: np.random.Generator) -> np.ndarray:
        y = self.y_train
        if self.cfg.balance == "none":
            return rng.permutation(len(y))
        hard = np.where(y >= 0, y, self.train_set.targets.argmax(1))
        groups = [np.flatnonzero(hard == c) for c in range(len(self.classes))]
        groups = [g for g in groups if len(g)]
        if self.cfg.balance == "undersample":
            n = min(len(g) for g in groups)
            idx = np.concatenate([rng.choice(g, n, replace=False) for g in groups])
        elif self.cfg.balance == "oversample":
            n = int(np.median([len(g) for g in groups]))
            idx = np.concatenate([g if len(g) >= n else rng.choice(g, n, replace=True) for g in groups])
        else:
            raise ValueError(f"unknown balance mode {self.cfg.balance!r}")
        return rng.permutation(idx)

    # -- optimisation -----------------------------------------------------------------------
    def make_optimizer(self, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if self.cfg.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=lr)
        if self.cfg.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=lr, momentum=self.cfg.momentum, nesterov=True)
        raise ValueError(f"unknown optimizer {self.cfg.optimizer!r}")

    def log(self, rec: dict[str, Any]) -> None:
        with open(self.log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def evaluate(self, model: nn.Module) -> tuple[float, np.ndarray]:
        logits = predict_logits(model, self.x_val, self.device, crop=self.cfg.augment.crop, amp=self.cfg.amp,
                                boxes=self.b_val)
        y = self.val_set.labels
        m = y >= 0
        return float((logits[m].argmax(1) == y[m]).mean()), logits

    def save(self, path: Path, **extra: Any) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save(extra, tmp)
        os.replace(tmp, path)

    def _check_resume_config(self) -> str:
        """Before resuming: refuse settings that do not fit the saved checkpoint (model, data, labels ...);
        describe other changes (learning rate, epochs ...), which the log then records. Returns ``""`` if none."""
        saved_path, last = self.run_dir / "config.json", self.run_dir / "last.pt"
        if not (saved_path.is_file() and last.is_file()):
            return ""
        try:
            saved = json.loads(saved_path.read_text())
        except (OSError, ValueError):
            return ""
        now = _flat_augment(json.loads(json.dumps(asdict(self.cfg))))
        saved = _flat_augment(saved)
        if "labels" in saved:  # (None and the label set it stands for are one setting)
            saved["labels"] = normalise_labels(str(saved.get("data", self.cfg.data)), saved["labels"])
            now["labels"] = normalise_labels(self.cfg.data, now["labels"])
        diff = {k: (saved.get(k), v) for k, v in now.items()
                if k in saved and saved.get(k) != v and not _same_path(k, saved.get(k), v)}
        fixed = RESUME_FIXED | {f"augment.{k}" for k in RESUME_FIXED_AUGMENT}
        hard = {k: d for k, d in diff.items() if k in fixed}
        if hard:
            what = "; ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in hard.items())
            run = self.run_dir.parent if self.cfg.fold >= 0 else self.run_dir  # a fold: the k-fold run's folder
            raise ConfigError(f"{run} holds a run with other settings ({what}): resume it with its own settings "
                              f"(the same ferkit train command, or --config of its settings) or train into a new "
                              "folder")
        text = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items())
        if text and not self.quiet:
            print(f"ferkit: resuming {self.run_dir} with changed settings: {text}", file=sys.stderr)
        return text

    def run(self, max_epochs: int | None = None) -> dict[str, Any]:
        """Train (resuming from ``last.pt`` when the run directory has one) and write the final reports.

        ``max_epochs``: stop after this many epochs in this call, as an interruption would (no final report;
        a later ``run()`` resumes exactly where this one stopped, with the same result as an uninterrupted run).
        """
        cfg = self.cfg
        changed = self._check_resume_config()
        (self.run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        if changed:
            self.log({"note": f"resumed with changed settings: {changed}"})
        model, dev = self.model, self.device
        head_only = cfg.head_epochs > 0
        params = head_parameters(model) if head_only else list(model.parameters())
        if head_only:
            for p in model.parameters():
                p.requires_grad_(False)
            for p in params:
                p.requires_grad_(True)
        opt = self.make_optimizer(params, cfg.head_lr if head_only else cfg.lr)
        start_epoch, best_acc, best_epoch, total_epochs = 0, -1.0, -1, cfg.epochs
        history: list[dict[str, Any]] = []
        wall0 = self.t_start
        last = self.run_dir / "last.pt"
        if last.exists():
            ck = torch.load(last, map_location=dev, weights_only=False)
            model.load_state_dict(ck["model"])
            if self.ema is not None and ck.get("ema") is not None:
                self.ema.module.load_state_dict(ck["ema"])
            start_epoch, best_acc, best_epoch = ck["epoch"] + 1, ck["best_acc"], ck["best_epoch"]
            history = ck.get("history", [])
            # Keep a deadline-shortened count unless the user asked for a different number of epochs.
            total_epochs = ck.get("total_epochs", cfg.epochs) if ck.get("cfg_epochs") == cfg.epochs else cfg.epochs
            wall0 -= ck.get("wall_s", 0.0)
            if start_epoch >= cfg.head_epochs and head_only:
                head_only = False
                for p in model.parameters():
                    p.requires_grad_(True)
                opt = self.make_optimizer(list(model.parameters()), cfg.lr)
            if (ck["epoch"] < cfg.head_epochs) == head_only:  # a head-only optimizer's state fits only its kind
                opt.load_state_dict(ck["opt"])
            torch.set_rng_state(ck["rng_cpu"].cpu())
            self.gen.set_state(ck["rng_dev"].cpu())
            if ck.get("rng_cuda") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state(ck["rng_cuda"].cpu())
            if not self.quiet:
                print(f"resuming {self.run_dir} after epoch {start_epoch}", file=sys.stderr)
        if start_epoch == 0:  # (the layout changes the float rounding, so results depend on it slightly)
            self.log({"note": f"training on {dev.type}, memory layout "
                              f"{'channels_last' if self.channels_last else 'contiguous'}"
                              + (f", warm start from {cfg.init}" if cfg.init else "")})
        rng = np.random.default_rng(cfg.seed + 1000 * start_epoch)  # (epoch order, mixup) restored below
        if start_epoch and ck.get("rng_np") is not None:
            rng.bit_generator.state = ck["rng_np"]
        stop_at = start_epoch + max_epochs if max_epochs is not None else None
        bad_epochs = 0 if best_epoch < 0 else max(0, start_epoch - 1 - best_epoch)
        epoch = start_epoch
        while epoch < total_epochs:
            t_ep = time.time()
            if head_only and epoch >= cfg.head_epochs:
                head_only = False
                for p in model.parameters():
                    p.requires_grad_(True)
                opt = self.make_optimizer(list(model.parameters()), cfg.lr)
            model.train()
            idx = torch.from_numpy(self.epoch_indices(rng)).to(dev)
            n_steps = math.ceil(len(idx) / cfg.batch_size)
            until = f", or {cfg.deadline_min:g} min" if cfg.deadline_min > 0 else ""  # whichever comes first
            bar = tqdm(range(n_steps), desc=f"epoch {epoch + 1}/{total_epochs}{until}", leave=False,
                       disable=self.quiet)
            loss_sum, seen = torch.zeros((), device=dev), 0
            for s in bar:
                b = idx[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                if len(b) < 2:
                    continue
                ep_f = epoch + s / n_steps
                if head_only:
                    lr = cfg.head_lr
                else:
                    body_ep = ep_f - cfg.head_epochs
                    body_total = total_epochs - cfg.head_epochs
                    if cfg.deadline_min > 0 and body_ep >= cfg.warmup_epochs:
                        # With a wall-clock budget the schedule follows whichever runs out first.
                        frac = (time.time() - wall0) / (cfg.deadline_min * 60)
                        body_ep = max(body_ep, cfg.warmup_epochs + frac * (body_total - cfg.warmup_epochs))
                    lr = cfg.lr * _lr_factor(cfg, body_ep, body_total)
                for g in opt.param_groups:
                    g["lr"] = lr
                t = self.t_train[b]
                bx = cached = None
                # Minority-class samples get stronger augmentation (the view bank applied it when built).
                strong = self.minority[t.argmax(1)] if cfg.minority_aug and self.bank is None else None
                if self.bank is not None:
                    vi = torch.randint(len(self.bank), (len(b),), device=dev, generator=self.gen)
                    x = self.bank[vi, b].float().div_(255)
                    cached = self.bank_probs[vi, b].float()
                elif self.b_train is not None:
                    x = self.x_train[b].float().div_(255)
                    x, bx = augment(x, cfg.augment, strong, self.gen, boxes=self.b_train[b])
                else:
                    x = augment(self.x_train[b].float().div_(255), cfg.augment, strong, self.gen)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                if cfg.mixup > 0:
                    lam = float(np.random.default_rng(int(rng.integers(1 << 31))).beta(cfg.mixup, cfg.mixup))
                    perm = torch.randperm(len(b), device=dev, generator=self.gen)
                    x = lam * x + (1 - lam) * x[perm]
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.amp and dev.type == "cuda"):
                    logits = model(x) if bx is None else model(x, bx)
                kw = dict(
                    scheme=cfg.scheme,
                    weights=self.weights,
                    ml_threshold=cfg.ml_threshold,
                    label_smoothing=cfg.label_smoothing,
                    drop_single=cfg.drop_single_votes,
                    generator=self.gen,
                )
                loss = scheme_loss(logits, t, **kw)
                if cfg.mixup > 0:
                    loss = lam * loss + (1 - lam) * scheme_loss(logits, t[perm], **kw)
                if (self.teachers or cached is not None) and cfg.kd_weight > 0:
                    kd = self.distill_loss(logits, x, bx, cached)
                    loss = (1 - cfg.kd_weight) * loss + cfg.kd_weight * kd
                # Architectures with an auxiliary objective (e.g. RAN's region-biased loss) set
                # `extra_loss` on their backbone during forward.
                extra = getattr(getattr(model, "backbone", model), "extra_loss", None)
                if extra is not None:
                    loss = loss + extra
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                if self.ema is not None:
                    self.ema.update(model)
                loss_sum += loss.detach() * len(b)
                seen += len(b)
            eval_model = self.ema.module if self.ema is not None else model
            val_acc, _ = self.evaluate(eval_model)
            train_loss = float(loss_sum) / max(seen, 1)
            ep_time = time.time() - t_ep
            rec = {
                "epoch": epoch + 1,
                "train_loss": round(train_loss, 5),
                "val_acc": round(val_acc, 5),
                "lr": lr,
                "time_s": round(ep_time, 2),
                "head_only": head_only,
            }
            history.append(rec)
            self.log(rec)
            if not self.quiet:
                print(json.dumps(rec), file=sys.stderr, flush=True)
            if val_acc > best_acc:
                best_acc, best_epoch, bad_epochs = val_acc, epoch, 0
                self.save(self.run_dir / "best.pt", model=eval_model.state_dict(), epoch=epoch, val_acc=val_acc)
            else:
                bad_epochs += 1
            self.save(
                last,
                model=model.state_dict(),
                ema=self.ema.module.state_dict() if self.ema else None,
                opt=opt.state_dict(),
                epoch=epoch,
                best_acc=best_acc,
                best_epoch=best_epoch,
                total_epochs=total_epochs,
                cfg_epochs=cfg.epochs,
                history=history,
                wall_s=time.time() - wall0,
                rng_cpu=torch.get_rng_state(),
                rng_dev=self.gen.get_state(),
                rng_cuda=torch.cuda.get_rng_state() if dev.type == "cuda" else None,
                rng_np=rng.bit_generator.state,
            )
            epoch += 1
            if stop_at is not None and epoch >= stop_at and epoch < total_epochs:
                return {"stopped_at_epoch": epoch, "best_val_accuracy": best_acc, "best_epoch": best_epoch + 1}
            if cfg.deadline_min > 0 and time.time() - wall0 >= cfg.deadline_min * 60:
                self.log({"note": f"deadline of {cfg.deadline_min} min reached after epoch {epoch}"})
                break
            if cfg.patience and bad_epochs >= cfg.patience:
                self.log({"note": f"early stop at epoch {epoch}: no val gain for {cfg.patience} epochs"})
                break
        # Final: best checkpoint, validation report, temperature.
        best = torch.load(self.run_dir / "best.pt", map_location=dev, weights_only=False)
        model.load_state_dict(best["model"])
        _, val_logits = self.evaluate(model)
        temp = fit_temperature(val_logits, self.val_set.labels)
        report = classification_report(self.val_set.labels, softmax(val_logits), self.classes)
        report_t = classification_report(self.val_set.labels, softmax(val_logits, temp), self.classes)
        metrics = {
            "model": cfg.model,
            "classes": list(self.classes),
            "best_epoch": best_epoch + 1,
            "epochs_run": len(history),
            "val": report,
            "temperature": temp,
            "val_ece_calibrated": report_t["ece"],
            "train_images": len(self.train_set),
            "val_images": len(self.val_set),
            "wall_s": round(time.time() - wall0, 1),
            "device": str(dev),
            "hardware": torch.cuda.get_device_name(0) if dev.type == "cuda" else platform.processor() or "cpu",
            "cpu_threads": torch.get_num_threads(),
            "params": sum(p.numel() for p in model.parameters()),
        }
        np.save(self.run_dir / "val_logits.npy", val_logits.astype(np.float32))
        (self.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        return metrics


def train(cfg: TrainConfig, run_dir: str | Path, quiet: bool = False) -> dict[str, Any]:
    """Train one model, or ``cfg.folds`` models for stratified k-fold CV (mean ± std in ``cv.json``)."""
    cfg.check()
    from ..io._files import FolderLock

    new = not Path(run_dir).exists()
    try:
        with FolderLock(run_dir, f"another training run is using {run_dir}"):
            return _train(cfg, run_dir, quiet)
    except BaseException:
        if new and Path(run_dir).is_dir() and not any(Path(run_dir).rglob("*.pt")):
            shutil.rmtree(run_dir, ignore_errors=True)  # a run that failed before its first checkpoint: no debris
        raise


def _train(cfg: TrainConfig, run_dir: str | Path, quiet: bool) -> dict[str, Any]:
    if cfg.folds <= 1:
        return Trainer(cfg, run_dir, quiet=quiet).run()
    _check_kfold_resume(cfg, Path(run_dir))
    full = load_dataset(cfg.data, "train", cfg.labels, cfg.data_dir)
    if cfg.soft_targets:
        blend_soft_targets(full, cfg)
    if cfg.init and _same_data(cfg, cfg.init):
        warnings.warn(f"k-fold from init {cfg.init}, which was trained on this training split: every fold's "
                      "validation faces were in its training data, so the fold scores are optimistic", stacklevel=2)
    if cfg.drop_unscored_train:
        full = full.subset(np.flatnonzero(full.labels >= 0))
    hard = np.where(full.labels >= 0, full.labels, full.targets.argmax(1))
    if cfg.folds > len(hard) // 2:
        raise ConfigError(f"{cfg.folds} folds of {len(hard)} training faces leave folds nearly empty: use fewer")
    folds = stratified_folds(hard, cfg.folds, cfg.seed)
    results = []
    for i, val_idx in enumerate(folds):
        train_idx = np.setdiff1d(np.arange(len(full)), val_idx)
        fcfg = copy.deepcopy(cfg)
        fcfg.folds, fcfg.fold = 0, i
        m = Trainer(
            fcfg, Path(run_dir) / f"fold{i}", train=full.subset(train_idx), val=full.subset(val_idx), quiet=quiet
        ).run()
        results.append(m)
    accs = np.array([m["val"]["accuracy"] for m in results])
    f1s = np.array([m["val"]["macro_f1"] for m in results])
    per_class = {c: [m["val"]["per_class"][c]["top1"] for m in results] for c in results[0]["classes"]}
    cv = {
        "folds": cfg.folds,
        "accuracy_mean": float(accs.mean()),
        "accuracy_std": float(accs.std(ddof=1)),
        "macro_f1_mean": float(f1s.mean()),
        "macro_f1_std": float(f1s.std(ddof=1)),
        "fold_accuracy": accs.tolist(),
        # A class absent from a fold's validation part has no top-1 there (None); mean / std over the other
        # folds, None (JSON null) where fewer than one / two folds have it.
        "per_class_top1_mean": {c: _nan_stat(v, 1) for c, v in per_class.items()},
        "per_class_top1_std": {c: _nan_stat(v, 2) for c, v in per_class.items()},
        "per_class_folds": {c: int(np.isfinite(np.array(v, dtype=float)).sum()) for c, v in per_class.items()},
    }
    (Path(run_dir) / "cv.json").write_text(json.dumps(cv, indent=2))
    return cv


def _flat_augment(cfg: dict[str, Any]) -> dict[str, Any]:
    """A saved config dict with ``augment`` as ``augment.KEY`` entries (a crop missing from old configs is 1.0)."""
    aug = cfg.get("augment")
    if not isinstance(aug, dict):
        return cfg
    flat = {k: v for k, v in cfg.items() if k != "augment"}
    flat.update({f"augment.{k}": v for k, v in {"crop": 1.0, **aug}.items()})
    return flat


def _check_kfold_resume(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse to resume a k-fold run folder with another fold count or seed (they decide the split: old folds would
    be scored on faces they were trained on); record them in ``kfold.json`` for the next run."""
    record = run_dir / "kfold.json"
    now = {"folds": cfg.folds, "seed": cfg.seed}
    if any(run_dir.glob("fold*/*.pt")):
        try:
            saved = json.loads(record.read_text())
        except (OSError, ValueError):  # (a run from before kfold.json: what its folds show)
            saved = {}
            seeds = set()
            for d in run_dir.glob("fold*"):
                try:
                    seeds.add(json.loads((d / "config.json").read_text()).get("seed"))
                except (OSError, ValueError):
                    pass
            if len(seeds) == 1:
                saved["seed"] = seeds.pop()
            try:
                saved["folds"] = json.loads((run_dir / "cv.json").read_text())["folds"]
            except (OSError, ValueError, KeyError, TypeError):
                pass  # (interrupted before cv.json: refused below)
        if "folds" not in saved or "seed" not in saved:  # an interrupted run from before kfold.json
            raise ConfigError(f"{run_dir} holds fold checkpoints of an interrupted k-fold run whose split this "
                              "version cannot tell (no kfold.json or cv.json): train into a new -o folder")
        diff = {k: (saved[k], v) for k, v in now.items() if k in saved and saved[k] != v}
        if diff:
            what = "; ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ConfigError(f"{run_dir} holds a k-fold run with another split ({what}): its folds were trained "
                              "on other faces, so resuming would score them on faces they saw. Rerun it with its "
                              "own folds and seed, or train into a new -o folder")
    record.write_text(json.dumps(now, indent=2))


def _same_data(cfg: TrainConfig, spec: str) -> bool:
    """Whether the run ``spec`` (``RUN[:CHECKPOINT]``) was trained on the same dataset as ``cfg``."""
    try:
        saved = json.loads((Path(spec.partition(":")[0]) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    data = saved.get("data", "ferplus")
    return ((data, saved.get("data_dir"), normalise_labels(str(data), saved.get("labels")))
            == (cfg.data, cfg.data_dir, normalise_labels(cfg.data, cfg.labels)))


def _nan_stat(values: list[float | None], need: int) -> float | None:
    """Mean (``need`` 1) or sample std (``need`` 2) of the finite values, None with fewer than ``need``."""
    a = np.array(values, dtype=float)
    a = a[np.isfinite(a)]
    if len(a) < need:
        return None
    return float(a.mean()) if need == 1 else float(a.std(ddof=1))


__all__ = ["TrainConfig", "Trainer", "blend_soft_targets", "predict_logits", "stratified_folds", "train"]
