"""fileio: encoding/BOM/line-ending detection, lossless round trips, atomic writes."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest

from qwen_code.tools.base import ToolError
from qwen_code.tools.fileio import (
    BinaryFileError,
    TextFormat,
    atomic_write,
    decode_bytes,
    detect_newline,
    encode_text,
    line_count,
    list_files,
    open_lines,
    read_text,
    sniff_stream,
    stream_lines,
    unified_diff,
    write_text,
)
from tests.helpers import git_init

SAMPLES = {
    "utf8-lf": ("héllo\nwörld\n".encode(), TextFormat()),
    "utf8-crlf": (b"one\r\ntwo\r\n", TextFormat(newline="\r\n")),
    "utf8-bom": (codecs.BOM_UTF8 + b"a\r\nb\r\n", TextFormat(bom=True, newline="\r\n")),
    "utf16le-bom": (
        codecs.BOM_UTF16_LE + "x\r\ny\r\n".encode("utf-16-le"),
        TextFormat(encoding="utf-16-le", bom=True, newline="\r\n"),
    ),
    "utf16be-bom": (
        codecs.BOM_UTF16_BE + "中文\n".encode("utf-16-be"),
        TextFormat(encoding="utf-16-be", bom=True),
    ),
    "gb18030": ("中文注释\n第二行\n".encode("gb18030"), TextFormat(encoding="gb18030")),
    "latin1": (b"caf\xe9 \xe0 la cr\xe8me\n", TextFormat(encoding="latin-1")),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_decode_detects_format_and_round_trips_bytes(name: str) -> None:
    data, expected = SAMPLES[name]
    decoded = decode_bytes(data)
    assert decoded.format == expected
    assert "\r" not in decoded.text
    assert encode_text(decoded.text, decoded.format) == data


def test_decoded_text_is_normalized() -> None:
    assert decode_bytes(codecs.BOM_UTF8 + b"a\r\nb").text == "a\nb"
    assert decode_bytes("中文\n".encode("gb18030")).text == "中文\n"


def test_lone_carriage_return_is_content() -> None:
    data = b"a\rb\r\nc\r\n"
    decoded = decode_bytes(data)
    assert decoded.text == "a\rb\nc\n"
    assert encode_text(decoded.text, decoded.format) == data


@pytest.mark.parametrize(
    "data", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\x01\x02\x03\x04\xff\x05"]
)
def test_binary_is_refused(data: bytes) -> None:
    with pytest.raises(BinaryFileError):
        decode_bytes(data)


def test_detect_newline() -> None:
    assert detect_newline("a\r\nb\r\nc\n") == "\r\n"
    assert detect_newline("a\nb\r\nc\n") == "\n"
    assert detect_newline("no newline") == "\n"


def test_line_count() -> None:
    assert [line_count(t) for t in ("", "a", "a\n", "a\nb", "a\nb\n")] == [0, 1, 1, 2, 2]


def test_encode_reports_unencodable_characters() -> None:
    with pytest.raises(ToolError, match="latin-1"):
        encode_text("中", TextFormat(encoding="latin-1"))


def test_atomic_write_creates_parents_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.txt"
    atomic_write(target, b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in target.parent.iterdir()] == ["c.txt"]


def test_atomic_write_keeps_mode_of_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "run.sh"
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)
    atomic_write(target, b"#!/bin/sh\necho hi\n")
    assert target.stat().st_mode & 0o777 == 0o755


def test_atomic_write_new_file_follows_umask(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write(tmp_path / "new.txt", b"x")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_cleans_up_on_failure(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    target = folder / "dir"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        atomic_write(target, b"cannot replace a directory")
    assert [p.name for p in folder.iterdir()] == ["dir"]
    assert [p.name for p in target.iterdir()] == ["inside"]


def test_write_text_reapplies_format(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    fmt = TextFormat(encoding="utf-16-le", bom=True, newline="\r\n")
    write_text(target, "a\nb\n", fmt)
    assert target.read_bytes() == codecs.BOM_UTF16_LE + "a\r\nb\r\n".encode("utf-16-le")
    assert read_text(target).format == fmt


def test_write_text_defaults_to_content_newline(tmp_path: Path) -> None:
    assert write_text(tmp_path / "a", "x\r\ny\r\n").newline == "\r\n"
    assert (tmp_path / "a").read_bytes() == b"x\r\ny\r\n"


def test_open_lines_is_lazy_and_strips_endings(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(codecs.BOM_UTF16_LE + "one\r\ntwo\r\nthree".encode("utf-16-le"))
    with open_lines(target) as (lines, fmt):
        assert next(lines) == "one"
        assert list(lines) == ["two", "three"]
    assert fmt == TextFormat(encoding="utf-16-le", bom=True, newline="\r\n")


def test_stream_lines_reads_a_file_the_caller_opened(tmp_path: Path) -> None:
    """The form `read_file` uses on a descriptor from the workspace walk."""
    target = tmp_path / "f.txt"
    target.write_bytes(codecs.BOM_UTF8 + "α\r\nβ".encode())
    with target.open("rb") as raw:
        assert sniff_stream(raw) == TextFormat(bom=True, newline="\r\n")
        assert raw.tell() == 0
        lines, fmt = stream_lines(raw)
        assert list(lines) == ["α", "β"]
    assert fmt == TextFormat(bom=True, newline="\r\n")


def test_unified_diff() -> None:
    diff = unified_diff("a\nb\n", "a\nc", "f.txt")
    assert diff.startswith("--- a/f.txt\n+++ b/f.txt\n")
    assert "-b\n" in diff
    assert "+c\n\\ No newline at end of file\n" in diff
    assert unified_diff("same\n", "same\n", "f") == ""


@pytest.mark.parametrize("use_ripgrep", [True, False])
async def test_list_files_respects_gitignore(tmp_path: Path, use_ripgrep: bool) -> None:
    tmp_path = tmp_path / "repo"
    tmp_path.mkdir()
    git_init(tmp_path)
    (tmp_path / ".gitignore").write_text("build/\n*.log\n")
    for rel in ("src/a.py", "build/out.py", "debug.log", ".hidden/x.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    found = await list_files(tmp_path, use_ripgrep=use_ripgrep)
    relative = sorted(p.relative_to(tmp_path).as_posix() for p in found)
    assert relative == [".gitignore", ".hidden/x.py", "src/a.py"]
