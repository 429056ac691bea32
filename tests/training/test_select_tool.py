"""tools/select_default.py: the view sets of the int8 search map onto the right `ferkit export` flags."""

from __future__ import annotations

import json

import pytest


def test_export_command_per_view_set(load_tool, tmp_path) -> None:
    tool = load_tool("select_default")
    for run in ("c/a", "c/b"):
        (tmp_path / run).mkdir(parents=True)
        (tmp_path / run / "config.json").write_text(json.dumps({"data": "ferplus"}))
        (tmp_path / f"{run}.pt").write_bytes(b"x")
    row = {"members": ["c/a", "c/b"], "views": "none"}
    cmd = tool.export_command(row, tmp_path, "default", "W")
    assert cmd == (f"ferkit export {tmp_path}/c/a:{tmp_path}/c/a.pt {tmp_path}/c/b:{tmp_path}/c/b.pt --name default "
                   "--data ferplus --int8 percentile --out-dir W")
    assert tool.export_command({**row, "views": "zoom3"}, tmp_path, "d", "W").endswith(
        "--tta-scales 0.92 1 1.08 --no-tta-flip")
    assert tool.export_command({**row, "views": "zoom2+flip"}, tmp_path, "d", "W").endswith("--tta-scales 1 1.08")
    assert tool.export_command({**row, "views": "flip"}, tmp_path, "d", "W").endswith("--tta-scales 1")
    assert set(tool.VIEWS) >= {"none", "flip", "zoom3", "zoom3+flip", "zoom2+flip"}
    with pytest.raises(SystemExit, match="c/missing"):
        tool.members_of({"members": ["c/missing"], "views": "none"}, tmp_path)
