"""Print the README's model table (markdown) from the shipped model cards."""

from __future__ import annotations

import json
from pathlib import Path

W = Path(__file__).resolve().parents[1] / "src" / "ferkit" / "weights"

for card_path in sorted(W.glob("*.json")):
    c = json.loads(card_path.read_text())
    m = c["metrics"]
    t, v = m.get("test"), m["val"]
    print(f"### `{c['name']}` — {c['data']['labels']}\n")
    q = c.get("quantization")
    qtxt = ""
    if q:
        agree = q["agreement_with_float_on_val"]["top1_agreement"]
        qtxt = (f"; static int8 ({q['calibration']} calibration on {q['calibration_faces']} training faces, "
                f"top-1 agreement with the float model on validation {agree:.4f})")
    print(f"{c['kind']}; {c['params'] / 1e6:.2f} M params, {c['macs'] / 1e6:.0f} M MACs per face, "
          f"{c['size_bytes'] / 1e6:.1f} MB{qtxt}; temperature {c['temperature']:.3f} "
          f"(validation ECE {m['val_uncalibrated_ece']:.3f} -> {m['val_calibrated_ece']:.3f}).\n")
    print(f"Validation accuracy {v['accuracy']:.4f}; **test accuracy {t['accuracy']:.4f}** "
          f"(flip TTA {m['test_flip_tta']['accuracy']:.4f}), macro-F1 {t['macro_f1']:.4f}, ECE {t['ece']:.4f}, "
          f"n = {t['n']} scored; not scored: " + ", ".join(f"{k} {n}" for k, n in t["excluded_on_load"].items() if n)
          + ".\n")
    print("| class | test n | top-1 | top-2 |")
    print("|---|---|---|---|")
    for k, pc in t["per_class"].items():
        print(f"| {k} | {pc['n']} | {pc['top1']:.3f} | {pc['top2']:.3f} |")
    print(f"| mean (variance) over classes | | {t['mean_class_top1']:.3f} ({t['var_class_top1']:.3f}) | "
          f"{t['mean_class_top2']:.3f} ({t['var_class_top2']:.3f}) |\n")
