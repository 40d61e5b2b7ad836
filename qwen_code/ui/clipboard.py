"""Images pasted from the clipboard into the REPL.

Ctrl+V (or `/paste`) reads the clipboard's image with the first tool found that has one
(`wl-paste` on Wayland, `xclip` on X11, `pngpaste` or `osascript` on macOS), saves it in
the session's scratch directory and puts `[image N]` in the input; the image goes with
the message that still names it (one pasted with `/paste` goes with the next message
in any case). Without a clipboard tool, the note says what to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from qwen_code.llm.modalities import image_size
from qwen_code.tools.media import MediaError, load_image
from qwen_code.ui.attachments import ImageRef
from qwen_code.ui.commands import command

if TYPE_CHECKING:
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    from qwen_code.ui.repl import Repl

PASTE_TIMEOUT_S = 5.0
READERS: tuple[tuple[str, ...], ...] = (
    ("wl-paste", "--no-newline", "--type", "image/png"),
    ("xclip", "-selection", "clipboard", "-t", "image/png", "-o"),
    ("pngpaste", "-"),
)
"""Commands that print the clipboard's image as PNG, tried in this order."""
_OSASCRIPT = (
    'set f to (open for access POSIX file "{path}" with write permission)',
    "write (the clipboard as «class PNGf») to f",
    "close access f",
)
NO_TOOL = (
    "No clipboard tool found to paste an image with: install wl-clipboard (Wayland), xclip "
    "(X11) or pngpaste (macOS), or attach the image with @path instead."
)


class ClipboardError(Exception):
    """No image could be pasted; the message says why."""


async def read_clipboard_image(target: Path) -> bytes:
    """The clipboard's image (PNG bytes) from the first tool that has one; it is also
    where `osascript` writes it, so `target` may be overwritten. Raises `ClipboardError`."""
    tried = []
    for argv in READERS:
        program = shutil.which(argv[0])
        if program is None:
            continue
        tried.append(argv[0])
        data = await _output([program, *argv[1:]])
        if data and image_size(data) is not None:
            return data
    osascript = shutil.which("osascript") if sys.platform == "darwin" else None
    if osascript is not None:
        tried.append("osascript")
        script = [arg for line in _OSASCRIPT for arg in ("-e", line.format(path=target))]
        await _output([osascript, *script])
        with contextlib.suppress(OSError):
            data = await asyncio.to_thread(target.read_bytes)
            if image_size(data) is not None:
                return data
    if not tried:
        raise ClipboardError(NO_TOOL)
    raise ClipboardError(f"The clipboard holds no image (asked {', '.join(tried)}).")


async def _output(argv: list[str]) -> bytes:
    """What the command prints (b"" when it fails or takes longer than the timeout)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return b""
    try:
        out, _ = await asyncio.wait_for(process.communicate(), PASTE_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return b""
    return out if process.returncode == 0 else b""


@dataclass(frozen=True, slots=True)
class Pasted:
    label: str
    """How the message names it: `[image N]`."""
    path: Path
    sticky: bool = False
    """Pasted with /paste: goes with the next message whether or not it names it."""


@dataclass(slots=True)
class PastedImages:
    """The REPL's pasted images that have not gone with a message yet."""

    items: list[Pasted] = field(default_factory=list)
    count: int = 0

    async def paste(self, scratch: Path, *, sticky: bool = False) -> Pasted:
        """Read the clipboard's image and keep it in `scratch` as `[image N]`."""
        target = scratch / f"clipboard-{self.count + 1}.png"
        data = await read_clipboard_image(target)
        await asyncio.to_thread(target.write_bytes, data)
        self.count += 1
        item = Pasted(f"[image {self.count}]", target, sticky)
        self.items.append(item)
        return item

    def take(self, text: str) -> list[Pasted]:
        """The images to go with the message `text` (the rest are dropped)."""
        chosen = [item for item in self.items if item.sticky or item.label in text]
        self.items.clear()
        return chosen


def load_pasted(items: list[Pasted]) -> tuple[list[ImageRef], list[str]]:
    """The pasted images loaded for the model, and what could not be (for the user)."""
    images, notes = [], []
    for item in items:
        try:
            images.append(ImageRef(item.label, load_image(item.path.read_bytes(), item.label)))
        except (OSError, MediaError) as exc:
            notes.append(f"{item.label} was not attached: {exc}")
    return images, notes


async def pasted_for(repl: Repl, text: str) -> list[ImageRef]:
    """The pasted images the message `text` takes (read in a thread), notes printed."""
    items = repl.pasted.take(text)
    if not items:
        return []
    images, notes = await asyncio.to_thread(load_pasted, items)
    for note in notes:
        repl.console.print(Text(f"  ⚠ {note}", style="yellow"))
    return images


def bind_paste(bindings: KeyBindings, repl: Repl) -> None:
    """Ctrl+V pastes the clipboard's image: `[image N]` goes in the input."""

    @bindings.add("c-v")
    def _paste(event: KeyPressEvent) -> None:
        buffer = event.current_buffer

        async def paste() -> None:
            try:
                item = await repl.pasted.paste(repl.session.tool_ctx.scratch())
            except ClipboardError as exc:
                _print_above(repl, Text(str(exc), style="yellow"))
                return
            buffer.insert_text(item.label)

        event.app.create_background_task(paste())


def _print_above(repl: Repl, text: Text) -> None:
    from prompt_toolkit.application import run_in_terminal

    run_in_terminal(lambda: repl.console.print(text))


@command("paste", "Attach the clipboard's image to your next message")
async def _paste_command(repl: Repl, args: str) -> None:
    try:
        item = await repl.pasted.paste(repl.session.tool_ctx.scratch(), sticky=True)
    except ClipboardError as exc:
        repl.console.print(Text(str(exc), style="yellow"))
        return
    note = f"{item.label} pasted from the clipboard: it goes with your next message."
    repl.console.print(Text(note, style="dim"))
