"""Training throughput of one architecture on CPU in the contiguous (NCHW) and channels_last memory layouts, side by
side in one run (what ``Trainer`` picks on CPU for models without grouped convolutions).

    python bench/bench_train_layout.py [--model resnet_fast] [--width 48] [--steps 4] [--batch 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ferkit.models import create_model  # noqa: E402


def images_per_s(model_name: str, kwargs: dict, channels_last: bool, steps: int, batch: int) -> float:
    torch.manual_seed(0)
    m = create_model(model_name, num_classes=8, in_chans=1, **kwargs)
    x, y = torch.randn(batch, 1, 48, 48), torch.randint(0, 8, (batch,))
    if channels_last:
        m, x = m.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            t = time.perf_counter()
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet_fast")
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    kw = {"width": a.width} if a.width else {}
    rates = {layout: images_per_s(a.model, kw, layout == "channels_last", a.steps, a.batch)
             for layout in ("contiguous", "channels_last")}
    print(f"{a.model} {kw} batch {a.batch}, {torch.get_num_threads()} threads: "
          + ", ".join(f"{k} {v:.0f} img/s" for k, v in rates.items())
          + f" ({rates['channels_last'] / rates['contiguous']:.2f}x)")


if __name__ == "__main__":
    main()
