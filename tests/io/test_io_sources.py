"""Tests of ferkit.io.media (image / video kinds) and ferkit.io.sources (expanding inputs)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ferkit.io import is_image_path, is_video_path, media_kind
from ferkit.io.sources import NOT_FOUND, UNSUPPORTED, Source, describe_problems, expand_sources


def _img(path: Path, size: tuple[int, int] = (4, 4)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path)
    return path


def _gif(path: Path, n: int) -> Path:
    frames = [Image.new("RGB", (4, 4), (i * 50, 0, 0)) for i in range(n)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


def test_media_kind_by_extension(tmp_path: Path) -> None:
    assert media_kind("a.JPG") == "image" and media_kind("b.tiff") == "image"
    assert media_kind("clip.MOV") == "video" and media_kind("x.mkv") == "video" and media_kind("x.webm") == "video"
    assert media_kind("notes.txt") is None and media_kind("model.onnx") is None
    assert is_video_path("v.mp4") and not is_video_path("p.png") and is_image_path("p.png")


def test_animated_images_are_videos(tmp_path: Path) -> None:
    assert media_kind(_gif(tmp_path / "anim.gif", 3)) == "video"
    assert media_kind(_gif(tmp_path / "still.gif", 1)) == "image"
    frames = [Image.new("RGB", (4, 4), (i * 50, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:], duration=100)
    assert media_kind(tmp_path / "anim.webp") == "video" and media_kind(tmp_path / "anim.png") == "video"
    assert media_kind(_img(tmp_path / "still.png")) == "image"


def test_unknown_extension_sniffed_by_content(tmp_path: Path, samples: Path) -> None:
    shutil.copy(samples / "single_face.jpg", tmp_path / "photo.dat")
    shutil.copy(samples / "single_face.mp4", tmp_path / "clip.bin")
    (tmp_path / "text.dat").write_text("hello")
    assert media_kind(tmp_path / "photo.dat") is None
    assert media_kind(tmp_path / "photo.dat", sniff=True) == "image"
    assert media_kind(tmp_path / "clip.bin", sniff=True) == "video"
    assert media_kind(tmp_path / "text.dat", sniff=True) is None


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    for name in ("img10.jpg", "img2.jpg", "IMG1.png", "sub/b.jpg", "sub/deeper/c.bmp", ".hidden/x.jpg"):
        _img(root / name)
    _img(root / ".dot.jpg")
    (root / "notes.txt").write_text("not a list given on the command line")
    (root / "model.onnx").write_bytes(b"\0" * 10)
    _gif(root / "sub" / "anim.gif", 3)
    return root


def test_folder_recursive_natural_order_skips_hidden_and_non_media(tree: Path) -> None:
    got = expand_sources([tree])
    rel = [s.path.relative_to(tree).as_posix() for s in got]
    assert rel == ["IMG1.png", "img2.jpg", "img10.jpg", "sub/anim.gif", "sub/b.jpg", "sub/deeper/c.bmp"]
    assert all(s.ok and s.origin == str(tree) for s in got)
    kinds = {s.path.name: s.kind for s in got}
    assert kinds["anim.gif"] == "video" and kinds["b.jpg"] == "image"


def test_folder_not_recursive_and_hidden(tree: Path) -> None:
    assert [s.path.name for s in expand_sources([tree], recursive=False)] == ["IMG1.png", "img2.jpg", "img10.jpg"]
    names = {s.path.name for s in expand_sources([tree], include_hidden=True)}
    assert {".dot.jpg", "x.jpg"} <= names


def test_missing_inputs_reported_not_raised(tree: Path, tmp_path: Path) -> None:
    inputs = [tree / "img2.jpg", tmp_path / "nope.jpg", tree / "model.onnx", tmp_path / "gone", tmp_path / "x.mp4"]
    got = expand_sources(inputs)
    assert [s.ok for s in got] == [True, False, False, False, False]
    assert [s.error for s in got[1:]] == [NOT_FOUND, UNSUPPORTED, NOT_FOUND, NOT_FOUND]
    lines = describe_problems(got)
    assert lines[0].startswith("3 inputs not found: ") and "nope.jpg" in lines[0] and "gone" in lines[0]
    assert lines[1].startswith("1 input not a supported image or video: ")

    errors: list[Source] = []
    ok = expand_sources(inputs, errors=errors)
    assert [s.path.name for s in ok] == ["img2.jpg"]
    assert len(errors) == 4 and not any(e.ok for e in errors)


def test_list_files(tree: Path, tmp_path: Path) -> None:
    lst = tree / "list.txt"
    lst.write_text("# my inputs\nimg2.jpg\n\n  sub/b.jpg  \nmissing.jpg\nsub/deeper\n")
    for arg in (f"@{lst}", str(lst)):
        got = expand_sources([arg])
        assert [s.path.name for s in got] == ["img2.jpg", "b.jpg", "missing.jpg", "c.bmp"]
        assert [s.ok for s in got] == [True, True, False, True]
        assert all(s.origin == arg for s in got)
    assert expand_sources([f"@{tmp_path / 'nolist.txt'}"])[0].error == NOT_FOUND


def test_duplicates_kept_once_and_single_path(tree: Path) -> None:
    got = expand_sources([tree / "img2.jpg", tree, str(tree / "img2.jpg")])
    names = [s.path.name for s in got]
    assert names.count("img2.jpg") == 1 and len(names) == 6
    assert [s.path.name for s in expand_sources(tree / "img2.jpg")] == ["img2.jpg"]


def test_empty_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    got = expand_sources([tmp_path / "empty"])
    assert len(got) == 1 and not got[0].ok and "no images or videos" in got[0].error


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlink_loop_does_not_hang(tree: Path) -> None:
    os.symlink(tree, tree / "sub" / "loop")
    got = expand_sources([tree])
    assert len(got) == 6


def test_folder_reads_files_without_extension_by_content_and_names_what_it_skips(tmp_path: Path) -> None:
    jpg = _img(tmp_path / "a.jpg")
    shutil.copyfile(jpg, tmp_path / "noext")  # e.g. a download without a name: recognised by content
    (tmp_path / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")  # not readable here: skipped, named
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / ".DS_Store").write_bytes(b"x")  # hidden: skipped silently
    (tmp_path / "README").write_text("not an image")  # no extension and no image: skipped, named
    with pytest.warns(UserWarning, match=r"skipped 3 files that are not images or videos: "
                                         r"notes\.json, photo\.heic, README"):
        got = expand_sources([tmp_path])
    assert [s.path.name for s in got] == ["a.jpg", "noext"] and all(s.kind == "image" for s in got)
