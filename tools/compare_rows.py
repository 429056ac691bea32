"""Compare two result tables of the same video (e.g. ``--workers 1`` against ``--workers 2``), and report how
steady each one is from frame to frame.

    python tools/compare_rows.py w1.csv w2.csv

Prints, for rows matched on (frame, face_id): how many rows have a box that differs (> 0.01 px), the largest
box and probability differences and the frames whose label differs; then, per table, face 0's frame-to-frame
box-centre and size changes, probability change (L1) and label flips.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

BOX = ["x", "y", "w", "h"]
META = {"source", "frame", "time_s", "face_id", "x", "y", "w", "h", "det_score", "emotion", "sentiment",
        "sentiment_score", "sharpness", "landmarks"}


def classes_of(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in META]


def differences(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float]:
    m = a.merge(b, on=["frame", "face_id"], suffixes=("_1", "_2"))
    cls = classes_of(a)
    box = np.abs(m[[f"{c}_1" for c in BOX]].to_numpy() - m[[f"{c}_2" for c in BOX]].to_numpy()).max(1)
    prob = np.abs(m[[f"{c}_1" for c in cls]].to_numpy() - m[[f"{c}_2" for c in cls]].to_numpy()).max(1)
    return {"rows_1": len(a), "rows_2": len(b), "matched": len(m), "rows_box_differs": int((box > 0.01).sum()),
            "max_box_diff_px": float(box.max(initial=0)), "max_prob_diff": float(prob.max(initial=0)),
            "label_differs": int((m["emotion_1"] != m["emotion_2"]).sum())}


def steadiness(df: pd.DataFrame) -> dict[str, float]:
    f = df[df["face_id"] == df["face_id"].min()].sort_values("frame")
    centre = f[["x", "y"]].to_numpy() + f[["w", "h"]].to_numpy() / 2
    dc = np.linalg.norm(np.diff(centre, axis=0), axis=1)
    dp = np.abs(np.diff(f[classes_of(df)].to_numpy(), axis=0)).sum(1)
    return {"frames": len(f), "centre_jitter_median_px": float(np.median(dc)),
            "centre_jitter_mean_px": float(dc.mean()),
            "size_jitter_mean_px": float(np.abs(np.diff(f["w"].to_numpy())).mean()),
            "prob_l1_change_mean": float(dp.mean()), "label_flips": int((f["emotion"].to_numpy()[1:]
                                                                         != f["emotion"].to_numpy()[:-1]).sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first")
    ap.add_argument("second")
    args = ap.parse_args(argv)
    a, b = pd.read_csv(args.first), pd.read_csv(args.second)
    for k, v in differences(a, b).items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    for name, df in ((args.first, a), (args.second, b)):
        print(name + ": " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in steadiness(df).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
