"""Fit the working tree that travels to the GPU machine (the `device` tool, 64 MiB with `.carry/`).

The training data in `.carry/` (~61 MB) plus the tracked files (~34 MB, mostly the shipped ONNX weights and
detector assets, which training does not need) exceed the limit. ``slim`` takes the large tracked files out
of the git index and ignores them (the files stay on disk, nothing is committed); ``restore`` puts the index
and `.git/info/exclude` back. Always ``restore`` before committing.

    python tools/gpu_tree.py slim       # before the `run` calls
    python tools/gpu_tree.py restore    # right after them
    python tools/gpu_tree.py size       # what would travel, in MiB
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXCLUDE = ROOT / ".git/info/exclude"
BEGIN, END = "# gpu_tree slim: begin", "# gpu_tree slim: end"
MIN_BYTES = 150_000  # tracked files at least this large (and not Python) stay behind


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def big_tracked() -> list[str]:
    out = []
    for f in git("ls-files").splitlines():
        p = ROOT / f
        if p.is_file() and p.stat().st_size >= MIN_BYTES and p.suffix != ".py":
            out.append(f)
    return out


def size() -> float:
    files = git("ls-files").splitlines() + git("ls-files", "--others", "--exclude-standard").splitlines()
    total = sum((ROOT / f).stat().st_size for f in files if (ROOT / f).is_file())
    total += sum(p.stat().st_size for p in (ROOT / ".carry").rglob("*") if p.is_file())
    return total / 2**20


def main() -> None:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "size"
    lines = EXCLUDE.read_text().splitlines() if EXCLUDE.exists() else []
    if cmd == "slim":
        if BEGIN in lines:
            sys.exit("already slimmed: run `restore` first")
        files = big_tracked()
        EXCLUDE.parent.mkdir(exist_ok=True)  # a fresh clone may have no .git/info
        EXCLUDE.write_text("\n".join(lines + [BEGIN] + [f"/{f}" for f in files] + [END]) + "\n")
        git("rm", "-q", "--cached", *files)
        print(f"left {len(files)} files behind; {size():.1f} MiB would travel (limit 64)")
    elif cmd == "restore":
        if BEGIN not in lines:
            sys.exit("nothing to restore")
        a, b = lines.index(BEGIN), lines.index(END)
        paths = [line[1:] for line in lines[a + 1:b]]
        EXCLUDE.write_text("\n".join(lines[:a] + lines[b + 1:]) + "\n")
        git("reset", "-q", "--", *paths)
        print(f"restored {len(paths)} files to the index")
    elif cmd == "size":
        print(f"{size():.1f} MiB would travel (limit 64)")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
