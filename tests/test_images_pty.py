"""Images in the interactive REPL, in a real pseudo-terminal: `@shot.png` attached to a
message, and an image pasted from the clipboard (Ctrl+V, `/paste`) through a stand-in
`wl-paste` on PATH (a real program that prints PNG bytes). Also the clipboard reader
itself: no clipboard tool, or a clipboard without an image."""

from __future__ import annotations

import base64
import io
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from qwen_code.ui.clipboard import NO_TOOL, ClipboardError, PastedImages, read_clipboard_image
from tests.fakeserver import FakeLLM, text
from tests.helpers import StartRepl

VISION = "qwen3-vl-plus"


def png(path: Path, size: tuple[int, int], color: str = "red") -> Path:
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def fake_wl_paste(folder: Path, image: Path | None) -> Path:
    """A `wl-paste` that prints `image` (or fails, as without an image: exit 1)."""
    folder.mkdir(exist_ok=True)
    program = folder / "wl-paste"
    body = (
        f"sys.stdout.buffer.write(open({str(image)!r}, 'rb').read())"
        if image is not None
        else "sys.stderr.write('No suitable type of content copied\\n'); sys.exit(1)"
    )
    program.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return folder


def last_user_content(fake: FakeLLM) -> Any:
    body = fake.chat_requests[-1].body
    assert body is not None
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def image_sizes(content: Any) -> list[tuple[int, int]]:
    assert isinstance(content, list)
    sizes = []
    for part in content:
        if part["type"] == "image_url":
            data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
            sizes.append(Image.open(io.BytesIO(data)).size)
    return sizes


def test_an_image_reference_goes_with_the_message(
    start_repl: StartRepl, project: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_MODEL", VISION)
    png(project / "shot.png", (120, 60))
    fake_llm.script(text("A red banner."))
    repl = start_repl()
    repl.send("what is in @shot.png")
    repl.expect("attached shot.png")
    repl.expect("A red banner.")
    repl.prompt()
    content = last_user_content(fake_llm)
    assert content[0]["text"].startswith("what is in @shot.png")
    assert image_sizes(content) == [(120, 60)]


def test_ctrl_v_pastes_the_clipboard_image(
    start_repl: StartRepl,
    tmp_path: Path,
    fake_llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tools = fake_wl_paste(tmp_path / "bin", png(tmp_path / "clip.png", (90, 30), "blue"))
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OPENAI_MODEL", VISION)
    fake_llm.script(text("A blue strip."))
    repl = start_repl()
    repl.child.send("look at ")
    repl.child.sendcontrol("v")
    repl.expect("[image 1]")
    repl.send(" please")
    repl.expect("A blue strip.")
    repl.prompt()
    content = last_user_content(fake_llm)
    assert content[0]["text"].startswith("look at [image 1] please")
    assert "[[image 1]: image (90x30" in content[0]["text"]
    assert image_sizes(content) == [(90, 30)]


def test_slash_paste_attaches_to_the_next_message(
    start_repl: StartRepl,
    tmp_path: Path,
    fake_llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tools = fake_wl_paste(tmp_path / "bin", png(tmp_path / "clip.png", (40, 40), "green"))
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OPENAI_MODEL", VISION)
    fake_llm.script(text("Green."), text("No image now."))
    repl = start_repl()
    repl.send("/paste")
    repl.expect("pasted from the clipboard")
    repl.prompt()
    repl.send("what colour?")
    repl.expect("Green.")
    repl.prompt()
    assert image_sizes(last_user_content(fake_llm)) == [(40, 40)]
    repl.send("and now?")
    repl.expect("No image now.")
    repl.prompt()
    assert last_user_content(fake_llm) == "and now?"


# --- the clipboard reader -------------------------------------------------------------------


async def test_without_a_clipboard_tool_the_note_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ClipboardError) as info:
        await PastedImages().paste(tmp_path)
    assert str(info.value) == NO_TOOL
    assert "wl-clipboard" in NO_TOOL and "xclip" in NO_TOOL


async def test_a_clipboard_without_an_image_is_said_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(fake_wl_paste(tmp_path / "bin", None)))
    with pytest.raises(ClipboardError, match=r"holds no image \(asked wl-paste\)"):
        await read_clipboard_image(tmp_path / "out.png")


async def test_pasted_images_go_with_the_message_that_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = png(tmp_path / "clip.png", (10, 10))
    monkeypatch.setenv("PATH", str(fake_wl_paste(tmp_path / "bin", clip)))
    pasted = PastedImages()
    first = await pasted.paste(tmp_path)
    second = await pasted.paste(tmp_path)
    assert (first.label, second.label) == ("[image 1]", "[image 2]")
    assert first.path.read_bytes() == clip.read_bytes()
    assert pasted.take("only [image 2] here") == [second]
    assert pasted.take("[image 1]") == []
