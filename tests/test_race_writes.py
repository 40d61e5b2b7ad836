"""The swap race: a directory in the workspace keeps trading places with a symlink to a
folder outside (`renameat2(RENAME_EXCHANGE)` in a tight loop, in another process) while
`write_file`, `edit` and `read_file` run. Not one byte may land in, change or come from the
outside folder; each call either did its work inside or failed with a message.

Each race runs rounds of 300 calls until 100 calls (300 reads) got past the path check (the
only ones a swap can redirect), at most 10 rounds. `race_write_files` / `race_edits` /
`race_reads` take the tool to run, so the same bodies can be pointed at an older
implementation to show that they catch the escape.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from qwen_code.tools.base import ToolContext, ToolError
from qwen_code.tools.edit import EditTool
from qwen_code.tools.read import ReadFileTool
from qwen_code.tools.workspace import Workspace
from qwen_code.tools.write import WriteFileTool

CALLS = 300
"""Calls per round: the report's 300 write_file calls."""
PAST_CHECK = 100
"""Most calls fail the path check (it sees the symlink); only those that pass it can be
redirected, so rounds go on until this many passed it..."""
MAX_ROUNDS = 10
"""...or this many rounds ran. Measured on the code before the descriptor walk: 7 to 30
writes and 17 to 29 edits went outside by then; 0 to 4 reads (a read's window is narrow)."""
AT_FDCWD = -100
RENAME_EXCHANGE = 2
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_RENAMEAT2 = getattr(_LIBC, "renameat2", None)

pytestmark = pytest.mark.skipif(
    _RENAMEAT2 is None,
    reason="needs renameat2() from glibc >= 2.28 on Linux to swap a directory and a symlink",
)
EXPECTED_ERRORS = ("outside the workspace", "changed while")
"""What a refused call says: the check saw the symlink, or the walk met it."""


_SWAP_LOOP = """
import ctypes, os, sys
renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
a, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
first = True
while True:
    if renameat2(-100, a, -100, b, 2) != 0:
        sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
    if first:
        print("swapping", flush=True)
        first = False
"""


def exchange(a: Path, b: Path) -> None:
    """Swap two names atomically (`renameat2(RENAME_EXCHANGE)`)."""
    assert _RENAMEAT2 is not None
    if _RENAMEAT2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), "renameat2", str(a))


class Swapper:
    """Swaps `a` and `b`, over and over, until the block ends; then puts the real
    directory back at `a`.

    The loop runs in a child process, so it swaps while this process runs Python code
    too (a thread would swap only when the GIL changes hands).
    """

    def __init__(self, a: Path, b: Path) -> None:
        self._a, self._b = a, b
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Swapper:
        argv = [sys.executable, "-c", _SWAP_LOOP, str(self._a), str(self._b)]
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._proc.stdout is not None
        if self._proc.stdout.readline() != b"swapping\n":  # the race is on from here
            self.__exit__()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._proc is not None
        self._proc.kill()
        _, err = self._proc.communicate()
        assert self._proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
        if self._a.is_symlink():
            exchange(self._a, self._b)


@dataclass
class RaceSite:
    """`base/sub` (a real directory) and `base/sub_link` (-> `outside`), where `base` is
    the workspace root or an extra root; `prefix` is how the model names `sub`. The
    counters add up over the rounds of one race."""

    base: Path
    outside: Path
    ctx: ToolContext
    prefix: str
    calls: int = 0
    escaped: int = 0
    done: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def sub(self) -> Path:
        return self.base / "sub"

    @property
    def past_check(self) -> int:
        """Calls that got past `resolve()`: the only ones a swap could still redirect."""
        return self.calls - sum("outside the workspace" in m for m in self.refused)

    def swapper(self) -> Swapper:
        return Swapper(self.sub, self.base / "sub_link")

    def outside_state(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.outside.iterdir())}


def make_site(tmp_path: Path, *, extra_root: bool = False) -> RaceSite:
    """The race in the workspace root (paths given relative), or in an extra root (an
    include directory, paths given absolute)."""
    ws, outside, extra = tmp_path / "ws", tmp_path / "outside", tmp_path / "include"
    base = extra if extra_root else ws
    for folder in (ws, outside, base / "sub"):
        folder.mkdir(parents=True, exist_ok=True)
    (base / "sub_link").symlink_to(outside)
    workspace = Workspace(root=ws, extra_roots=(extra,) if extra_root else ())
    prefix = str(workspace.extra_roots[0] / "sub") if extra_root else "sub"
    return RaceSite(base=base, outside=outside, ctx=ToolContext(workspace=workspace), prefix=prefix)


async def _call(site: RaceSite, tool: Any, params: Any, index: int) -> str | None:
    """Run one call; its output, or None when it was refused (recorded in the site)."""
    site.calls += 1
    try:
        out = await tool.run(params, site.ctx)
    except ToolError as exc:
        site.refused.append(str(exc))
        return None
    if out.is_error:
        site.refused.append(out.content)
        return None
    site.done.append(index)
    return str(out.content)


Round = Callable[[RaceSite, Any, range], Awaitable[None]]


async def _race(site: RaceSite, tool: Any, one_round: Round, enough: int = PAST_CHECK) -> int:
    """Rounds of `CALLS` calls under the swap until `enough` calls got past the path
    check (at most `MAX_ROUNDS`); how many reads, writes or edits went outside."""
    for n in range(MAX_ROUNDS):
        await one_round(site, tool, range(n * CALLS, (n + 1) * CALLS))
        if site.past_check >= enough:
            break
    return site.escaped


async def _write_round(site: RaceSite, tool: Any, indexes: range) -> None:
    with site.swapper():
        for i in indexes:
            params = tool.Params(file_path=f"{site.prefix}/f{i}.txt", content=f"content {i}\n")
            await _call(site, tool, params, i)
    site.escaped = len(site.outside_state())


async def _edit_round(site: RaceSite, tool: Any, indexes: range) -> None:
    for i in indexes:  # a decoy of the same name waits outside
        (site.sub / f"e{i}.txt").write_text(f"old {i}\n")
        (site.outside / f"e{i}.txt").write_text(f"old {i}\n")
    with site.swapper():
        for i in indexes:
            params = tool.Params(
                file_path=f"{site.prefix}/e{i}.txt", old_string="old", new_string="new"
            )
            await _call(site, tool, params, i)
    decoys = {f"e{i}.txt": f"old {i}\n".encode() for i in range(indexes.stop)}
    after = site.outside_state()
    site.escaped = sum(after.get(name) != data for name, data in decoys.items())
    site.escaped += len(set(after) - set(decoys))


async def _read_round(site: RaceSite, tool: Any, indexes: range) -> None:
    for i in indexes:  # a secret of the same name waits outside
        (site.sub / f"r{i}.txt").write_text(f"public {i}\n")
        (site.outside / f"r{i}.txt").write_text(f"SECRET {i}\n")
    with site.swapper():
        for i in indexes:
            content = await _call(site, tool, tool.Params(file_path=f"{site.prefix}/r{i}.txt"), i)
            site.escaped += content is not None and content != f"public {i}"


async def race_write_files(site: RaceSite, tool: Any) -> int:
    """write_file `sub/f{i}.txt` under the swap; how many files got outside."""
    return await _race(site, tool, _write_round)


async def race_edits(site: RaceSite, tool: Any) -> int:
    """edit `sub/e{i}.txt` under the swap; how many files outside changed or appeared."""
    return await _race(site, tool, _edit_round)


async def race_reads(site: RaceSite, tool: Any) -> int:
    """read_file `sub/r{i}.txt` under the swap; answers that were not the file inside.

    A read is quick, so its window is narrow: it takes more calls past the check."""
    return await _race(site, tool, _read_round, enough=3 * PAST_CHECK)


def _assert_refusals_explained(site: RaceSite) -> None:
    for message in site.refused:
        assert any(expected in message for expected in EXPECTED_ERRORS), message


@pytest.mark.parametrize("extra_root", [False, True], ids=["root", "extra-root"])
async def test_write_file_never_lands_outside_under_the_swap_race(
    tmp_path: Path, extra_root: bool
) -> None:
    site = make_site(tmp_path, extra_root=extra_root)
    escaped = await race_write_files(site, WriteFileTool())
    assert escaped == 0, f"{escaped} of {site.calls} write_file calls wrote outside"
    assert site.outside_state() == {}
    assert len(site.done) + len(site.refused) == site.calls
    _assert_refusals_explained(site)
    for i in site.done:  # reported as written: it is inside, with the content
        assert (site.sub / f"f{i}.txt").read_text() == f"content {i}\n"
    assert not [p.name for p in site.sub.iterdir() if p.name.endswith(".tmp")]


async def test_edit_never_changes_outside_under_the_swap_race(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    changed = await race_edits(site, EditTool())
    assert changed == 0, f"{changed} of {site.calls} edits changed a file outside"
    assert len(site.done) + len(site.refused) == site.calls
    _assert_refusals_explained(site)
    done = set(site.done)
    for i in range(site.calls):
        expected = "new" if i in done else "old"
        assert (site.sub / f"e{i}.txt").read_text() == f"{expected} {i}\n"
        assert (site.outside / f"e{i}.txt").read_text() == f"old {i}\n"


async def test_read_file_never_reads_outside_under_the_swap_race(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    leaked = await race_reads(site, ReadFileTool())
    assert leaked == 0, f"{leaked} of {site.calls} reads showed a file outside"
    assert len(site.done) + len(site.refused) == site.calls
    _assert_refusals_explained(site)
