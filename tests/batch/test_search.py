"""Searching an archive, contact sheets and photo sidecars."""

from __future__ import annotations

import json

import cv2
import pytest

from ferkit.errors import InputError
from ferkit.search import contact_sheet, search_archive, write_sidecars


def test_search_filters(local_job):
    inputs, out, _ = local_job
    allf = search_archive(out, top=None)
    assert len(allf) == 7 and allf["score"].is_monotonic_decreasing
    assert allf["score"].between(0, 1).all()  # the top emotion probability, never the sharpness column
    assert (search_archive(out, sentiment="negative", min_prob=0.99)["score"] >= 0.99).all()
    five = search_archive(out, faces=5)
    assert len(five) == 5 and set(five["source"]) == {str(inputs / "multi_face.jpg")}
    single = search_archive(out, max_faces=1)
    assert len(single) == 2
    happy = search_archive(out, emotion="happy", min_prob=0.8, top=3)
    assert 1 <= len(happy) <= 3 and (happy["emotion"] == "happy").all() and (happy["score"] >= 0.8).all()
    pos = search_archive(out, sentiment="positive")
    assert (pos["sentiment"] == "positive").all()
    assert len(search_archive(out, source="*single_face*")) == 1
    assert len(search_archive(out, source="multi_")) == 5
    with pytest.raises(InputError, match="unknown emotion"):
        search_archive(out, emotion="joy")
    with pytest.raises(InputError, match="unknown emotion"):
        search_archive(out, emotion="sharpness")


def test_contact_sheet_and_cli(local_job, tmp_path, capsys):
    from ferkit.cli import main

    _, out, _ = local_job
    sheet = tmp_path / "sheet.png"
    assert main(["search", str(out), "--min-faces", "1", "--top", "4", "--contact-sheet", str(sheet)]) == 0
    text = capsys.readouterr()
    assert text.out.count("\n") == 4 and "contact sheet of 4 faces" in text.err
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[1] > 4 * 160
    assert contact_sheet(search_archive(out, faces=99), tmp_path / "none.jpg") == 0
    assert main(["search", str(out), "--contact-sheet", str(tmp_path / "cs.bmpx")]) == 2  # not silently a JPEG
    assert "give a .jpg, .jpeg, .png, .webp file name" in capsys.readouterr().err


def test_tag_sidecars(local_job, tmp_path):
    inputs, out, _ = local_job
    n, problems = write_sidecars(out, out_dir=tmp_path / "side")
    assert n == 4 and not problems  # 3 photos with faces + 1 without; failed inputs get none
    found = list((tmp_path / "side").rglob("*.ferkit.json"))
    assert len(found) == 4
    doc = json.loads(next(p for p in found if p.name.startswith("multi_face")).read_text())
    assert len(doc["faces"]) == 5 and "faces/5" in doc["tags"]
    assert any(t.startswith("emotion/") for t in doc["tags"])
    probs = doc["faces"][0]["probabilities"]
    assert "sharpness" not in probs and sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    nf = json.loads(next(p for p in found if p.name.startswith("free-mountain")).read_text())
    assert nf["faces"] == [] and nf["tags"] == ["faces/0"]


def test_tag_never_replaces_the_photo(local_job, tmp_path):
    _, out, _ = local_job
    for bad in ("", " ", "/x", "..", "a/b"):
        with pytest.raises(InputError, match="never replace its photo"):
            write_sidecars(out, suffix=bad)


def test_tag_leaves_other_files_alone(samples, tmp_path):
    """A sidecar name that is already another file is not overwritten; a media-like suffix is refused; a photo
    deleted since the batch gets no sidecar (and is named)."""
    import shutil

    from ferkit.batch import run_batch

    ph = tmp_path / "ph"
    ph.mkdir()
    shutil.copyfile(samples / "single_face.jpg", ph / "p.jpg")
    shutil.copyfile(samples / "multi_face.jpg", ph / "q.jpg")
    (ph / "p.jpg.ferkit.json").write_text('{"mine": true}')
    run_batch([ph], tmp_path / "res", workers=1)
    n, problems = write_sidecars(tmp_path / "res")
    assert (ph / "p.jpg.ferkit.json").read_text() == '{"mine": true}'
    assert n == 1 and any("not a ferkit sidecar" in p for p in problems)
    (ph / "p.jpg.ferkit.json").unlink()
    n2, problems2 = write_sidecars(tmp_path / "res")  # written, then rewritten in place
    n3, problems3 = write_sidecars(tmp_path / "res")
    assert n2 == n3 == 2 and not problems2 and not problems3
    for bad in (".jpg", ".x.PNG", ".mp4"):
        with pytest.raises(InputError, match="ends like an image or video"):
            write_sidecars(tmp_path / "res", suffix=bad)
    (ph / "q.jpg").unlink()
    (ph / "q.jpg.ferkit.json").unlink()
    n4, problems4 = write_sidecars(tmp_path / "res")
    assert n4 == 1 and not (ph / "q.jpg.ferkit.json").exists()
    assert any("not there now" in p for p in problems4)
