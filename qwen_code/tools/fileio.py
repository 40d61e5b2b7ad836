"""Shared file helpers for the file tools: text decoding, atomic writes, diffs, file listing.

A file is read into text normalised to `\\n` plus a `TextFormat` (encoding, BOM, line
ending). Writing applies the format again, so an edit never turns a CRLF, BOM or GBK file
into something else: only the edited lines change on disk.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import difflib
import io
import os
import shutil
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, TextIO

from qwen_code.atomic import atomic_write
from qwen_code.processes import run_process
from qwen_code.tools.base import ToolError

if TYPE_CHECKING:
    from qwen_code.tools.base import ToolContext

SNIFF_BYTES = 8192
"""How much of a file the binary check looks at (as git does)."""

FALLBACK_ENCODINGS = ("utf-8", "gb18030", "latin-1")
"""Tried in order for files without a BOM. latin-1 decodes any bytes and round-trips them."""

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BOM_BY_ENCODING = {enc: bom for bom, enc in _BOMS}
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\b\x1b\x0b")

Newline = Literal["\n", "\r\n"]


@dataclass(frozen=True, slots=True)
class TextFormat:
    """How a text file is stored. `encoding` is a codec name without BOM handling
    (a UTF-8 file with a BOM is `encoding="utf-8", bom=True`)."""

    encoding: str = "utf-8"
    bom: bool = False
    newline: Newline = "\n"


@dataclass(frozen=True, slots=True)
class TextFile:
    text: str
    """The content with `\\r\\n` turned into `\\n` and without the BOM."""
    format: TextFormat


class BinaryFileError(ToolError):
    """The file is not text (NUL bytes, or no encoding decodes it)."""


def normalize_newlines(text: str) -> str:
    """`\\r\\n` → `\\n`. A lone `\\r` is content, not a line ending, and is kept."""
    return text.replace("\r\n", "\n")


def detect_newline(text: str) -> Newline:
    """The majority line ending; `\\n` when there is none."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf > text.count("\n") - crlf else "\n"


def looks_binary(sample: bytes) -> bool:
    """NUL bytes in the sample mean binary (BOM-marked UTF-16/32 is checked before this)."""
    return b"\x00" in sample[:SNIFF_BYTES]


def _split_bom(data: bytes) -> tuple[str | None, bytes]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, data[len(bom) :]
    return None, data


def _mostly_controls(sample: bytes) -> bool:
    """For the latin-1 fallback: text has few control bytes, binary data has many."""
    if not sample:
        return False
    controls = sum(1 for b in sample if b < 0x20 and b not in _TEXT_CONTROLS)
    return controls / len(sample) > 0.1


def _guess_encoding(data: bytes, *, complete: bool) -> str:
    """The first fallback encoding that decodes `data` (a prefix when not `complete`)."""
    if looks_binary(data):
        raise BinaryFileError("the file contains NUL bytes")
    for encoding in FALLBACK_ENCODINGS[:-1]:
        try:
            codecs.getincrementaldecoder(encoding)().decode(data, final=complete)
        except UnicodeDecodeError:
            continue
        return encoding
    if _mostly_controls(data[:SNIFF_BYTES]):
        raise BinaryFileError("the file is not decodable as text")
    return FALLBACK_ENCODINGS[-1]


def decode_bytes(data: bytes) -> TextFile:
    """Decode a whole file's bytes; raises `BinaryFileError` for binary data."""
    bom_encoding, body = _split_bom(data)
    encoding = bom_encoding or _guess_encoding(body, complete=True)
    try:
        raw = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise BinaryFileError(f"the file is not valid {encoding}") from exc
    fmt = TextFormat(encoding=encoding, bom=bom_encoding is not None, newline=detect_newline(raw))
    return TextFile(text=normalize_newlines(raw), format=fmt)


def read_text(path: Path) -> TextFile:
    """Read a whole text file. Raises `BinaryFileError` for binary files."""
    return decode_bytes(path.read_bytes())


def sniff_format(path: Path, sample_size: int = 65536) -> TextFormat:
    """The format of a (possibly huge) file judged from its first bytes."""
    with path.open("rb") as fh:
        return sniff_stream(fh, sample_size)


def sniff_stream(raw: BinaryIO, sample_size: int = 65536) -> TextFormat:
    """`sniff_format` for an open binary file; it is left at the position it had."""
    start = raw.tell()
    sample = raw.read(sample_size)
    raw.seek(start)
    complete = len(sample) < sample_size
    bom_encoding, body = _split_bom(sample)
    encoding = bom_encoding or _guess_encoding(body, complete=complete)
    try:
        raw_text = codecs.getincrementaldecoder(encoding)().decode(body, final=complete)
    except UnicodeDecodeError as exc:
        raise BinaryFileError(f"the file is not valid {encoding}") from exc
    return TextFormat(
        encoding=encoding, bom=bom_encoding is not None, newline=detect_newline(raw_text)
    )


@contextlib.contextmanager
def open_lines(path: Path) -> Iterator[tuple[Iterator[str], TextFormat]]:
    """Iterate a text file lazily, one line at a time, each without its line ending.

    Lines split on `\\n` only (as `edit` counts them); undecodable bytes past the sniffed
    prefix become U+FFFD instead of failing half-way through a large file.
    """
    with path.open("rb") as raw:
        yield stream_lines(raw)


def stream_lines(raw: BinaryIO) -> tuple[Iterator[str], TextFormat]:
    """`open_lines` for a binary file the caller opened (and closes), e.g. one reached
    through `Workspace.open_binary`; read from where it stands (the start when fresh)."""
    fmt = sniff_stream(raw)
    codec = fmt.encoding
    if fmt.bom:  # codecs that consume the BOM themselves
        codec = {"utf-8": "utf-8-sig"}.get(codec, codec.rsplit("-", 1)[0])
    text = io.TextIOWrapper(raw, encoding=codec, errors="replace", newline="\n")
    return _strip_endings(text), fmt


def _strip_endings(fh: TextIO) -> Iterator[str]:
    for line in fh:
        if line.endswith("\n"):
            line = line[:-2] if line.endswith("\r\n") else line[:-1]
        yield line


def encode_text(text: str, fmt: TextFormat) -> bytes:
    """The bytes for `text` stored in `fmt` (line endings, encoding, BOM)."""
    text = normalize_newlines(text)
    if fmt.newline == "\r\n":
        text = text.replace("\n", "\r\n")
    try:
        body = text.encode(fmt.encoding)
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise ToolError(
            f"The text contains characters ({bad!r}) that the file's encoding "
            f"({fmt.encoding}) cannot store. Write them differently (e.g. as escapes) "
            "or convert the file to UTF-8 first."
        ) from exc
    return (_BOM_BY_ENCODING[fmt.encoding] if fmt.bom else b"") + body


def write_text(path: Path, text: str, fmt: TextFormat | None = None) -> TextFormat:
    """Atomically write `text` in `fmt` (default: UTF-8 with the text's own line ending)."""
    fmt = fmt or TextFormat(newline=detect_newline(text))
    atomic_write(path, encode_text(text, fmt))
    return fmt


async def load_text(ctx: ToolContext, path: Path) -> TextFile:
    """A workspace file's text for edit/write_file: the editor's buffer when the session
    reads through one (`ToolContext.file_io`), else the bytes on disk read through the
    workspace's descriptor walk. Raises what `Workspace.read_bytes` and `decode_bytes` do."""
    if ctx.file_io is not None:
        text = await ctx.file_io.read_text(path)
        if text is not None:
            fmt = TextFormat(newline=detect_newline(text))
            return TextFile(text=normalize_newlines(text), format=fmt)
    return decode_bytes(ctx.workspace.read_bytes(path))


async def save_text(ctx: ToolContext, path: Path, text: str, fmt: TextFormat) -> bool:
    """Write `text` (`\\n`-normalised) in `fmt` through the editor (line endings only: the
    editor keeps its own encoding) or atomically on disk; whether the file was created."""
    if ctx.file_io is not None:
        wire = text.replace("\n", "\r\n") if fmt.newline == "\r\n" else text
        created = await ctx.file_io.write_text(path, wire)
        if created is not None:
            return created
    return ctx.workspace.write_bytes(path, encode_text(text, fmt))


def _diff_lines(text: str) -> list[str]:
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    elif lines:
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def unified_diff(old: str, new: str, label: str, *, context: int = 3) -> str:
    """A unified diff of two `\\n`-normalised texts for display (`a/label` → `b/label`)."""
    diff = difflib.unified_diff(
        _diff_lines(old), _diff_lines(new), f"a/{label}", f"b/{label}", n=context
    )
    return "".join(diff)


def line_count(text: str) -> int:
    """Lines in a `\\n`-normalised text; a final line without `\\n` counts."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


@lru_cache(maxsize=1)
def find_ripgrep() -> str | None:
    """The `rg` binary: on PATH, next to the interpreter, or in this environment's scripts."""
    exe = "rg.exe" if os.name == "nt" else "rg"
    found = shutil.which("rg")
    if found:
        return found
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


async def list_files(root: Path, *, use_ripgrep: bool = True) -> list[Path]:
    """Every file under `root` (absolute paths) that git would not ignore, `.git` skipped.

    ripgrep when available; else `git ls-files` inside a repository; else a plain walk.
    """
    rg = find_ripgrep() if use_ripgrep else None
    if rg:
        argv = [rg, "--files", "--hidden", "--null", "--glob", "!.git", "--", str(root)]
        _, out, _ = await run_process(argv)
        return [Path(os.fsdecode(p)) for p in out.split(b"\0") if p]
    git = shutil.which("git")
    if git:
        argv = [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        with contextlib.suppress(OSError):
            rc, out, _ = await run_process(argv, cwd=root)
            if rc == 0:
                paths = (root / os.fsdecode(p) for p in out.split(b"\0") if p)
                return sorted({p for p in paths if p.is_file() and not p.is_symlink()})
    return await asyncio.to_thread(_walk_files, root)


def _walk_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        base = Path(folder)
        found.extend(base / name for name in sorted(files) if not (base / name).is_symlink())
    return found
