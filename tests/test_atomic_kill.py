"""kill -9 during writes: every file is always either its old or its new content.

Each trial forks a child that keeps rewriting files through the same code the tools use
(`write_file`, `edit`, and the settings writer), and SIGKILLs it at a random moment.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

from qwen_code.config import add_allow_rule
from qwen_code.tools.base import ToolContext
from qwen_code.tools.edit import EditTool
from qwen_code.tools.workspace import Workspace
from qwen_code.tools.write import WriteFileTool

TRIALS = 150
OLD = "old line\r\n" * 20_000  # CRLF, ~200 KB: a write takes long enough to be hit
NEW = "new line\r\n" * 20_000


async def _one_cycle(root: Path) -> None:
    """Each file goes old -> new -> old (the settings file gains a rule)."""
    ctx = ToolContext(workspace=Workspace(root=root))
    write, edit = WriteFileTool(), EditTool()
    await write.run(write.Params(file_path="w.txt", content=NEW.replace("\r\n", "\n")), ctx)
    await write.run(write.Params(file_path="w.txt", content=OLD.replace("\r\n", "\n")), ctx)
    for old, new in (("old", "new"), ("new", "old")):
        params = edit.Params(file_path="e.txt", old_string=old, new_string=new, replace_all=True)
        await edit.run(params, ctx)
    add_allow_rule("edit", "project", cwd=root, env={"QWEN_HOME": str(root / "home")})


def _child(root: Path, ready_w: int) -> None:  # runs in the forked child, never returns
    async def churn() -> None:
        os.write(ready_w, b"x")
        while True:
            await _one_cycle(root)

    try:
        asyncio.run(churn())
    finally:
        os._exit(0)


def _cycle_seconds(root: Path) -> float:
    """How long one cycle takes on this machine now (the kills are spread over it)."""
    start = time.perf_counter()
    asyncio.run(_one_cycle(root))
    return time.perf_counter() - start


def test_files_are_old_or_new_after_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(7)
    root = tmp_path / "ws"
    root.mkdir()
    (root / ".git").mkdir()
    for name in ("w.txt", "e.txt"):
        (root / name).write_bytes(OLD.encode())
    seen: dict[str, set[str]] = {"w.txt": set(), "e.txt": set()}
    cycle = _cycle_seconds(root)
    for _ in range(TRIALS):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            _child(root, ready_w)
        os.close(ready_w)
        os.read(ready_r, 1)
        os.close(ready_r)
        time.sleep(rng.uniform(0, cycle * 1.2))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        for name, versions in seen.items():
            data = (root / name).read_bytes().decode()
            assert data in (OLD, NEW), f"{name} is torn after a kill: {len(data)} chars"
            versions.add("old" if data == OLD else "new")
        settings = root / ".qwen" / "settings.json"
        if settings.exists():
            assert settings.read_text().startswith("{")  # never a torn JSON file
    assert seen["w.txt"] == {"old", "new"}  # the kills did land mid-sequence
