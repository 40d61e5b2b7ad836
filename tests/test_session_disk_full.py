"""A disk that fills up while the session is saved, for real and without root.

A child process gets `RLIMIT_FSIZE` (with SIGXFSZ ignored, as Python does anyway): a write
that would take a file past the limit writes what fits and returns short, and the next one
fails with EFBIG, exactly as a write to a full disk does (short, then ENOSPC). Before the
fix, the short write left a torn line, the next record was glued to it once space came
back, and `-c` silently continued without both; a failure was also logged on every message.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qwen_code.config import qwen_home
from qwen_code.llm.client import with_string_content
from qwen_code.session.store import SessionInfo, list_sessions, load
from tests.fakeserver import FakeLLM, HTTPError, Turn, call, text, tool_turn
from tests.helpers import run_qwen_code, strict

SAVE_WARNING = (
    "session could not be saved: File too large; the conversation continues but -c may miss "
    "part of it"
)

needs_fsize_limit = pytest.mark.skipif(
    not hasattr(resource, "RLIMIT_FSIZE") or not hasattr(signal, "SIGXFSZ"),
    reason="needs RLIMIT_FSIZE and SIGXFSZ",
)


def file_size_limit(limit: int) -> Callable[[], None]:
    """For `preexec_fn`: files of the child cannot grow past `limit` bytes. The hard limit
    stays unlimited, so the limit can be lifted later (space comes back)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


def records(path: Path) -> list[dict[str, Any]]:
    """Every line of a session file, parsed: fails on a torn line or two glued records."""
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the file ends with a whole line"
    parsed = [json.loads(line) for line in lines[:-1]]
    assert all(isinstance(r, dict) and r.get("type") for r in parsed)
    return parsed


# --- the writer itself, in a child process with a file size limit -------------------------

WRITER_CHILD = r"""
import json, resource, signal, sys
from pathlib import Path
from qwen_code.session.store import SessionWriter

path, limit = Path(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
history = [
    {"role": "user", "content": "task"},
    {"role": "assistant", "content": "x" * 5000},
    {"role": "user", "content": "more"},
]
rewritten = [{"role": "user", "content": "summary"}, {"role": "assistant", "content": "y" * 3000}]
writer = SessionWriter(path, session_id="s", cwd=path.parent, model="m")
report = {"errors": [], "sizes": []}

def sync(messages):
    try:
        writer.sync(messages)
    except OSError as exc:
        report["errors"].append(exc.errno)
    report["sizes"].append(path.stat().st_size)

for n in range(1, len(history) + 1):
    sync(history[:n])
sync(rewritten)  # a rewrite (a replace record) while the disk is still full
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
sync(rewritten)  # space came back: what is missing is written now, once
sync(rewritten)
writer.close()
print(json.dumps(report))
"""


def run_writer_child(path: Path, limit: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", WRITER_CHILD, str(path), str(limit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@needs_fsize_limit
@pytest.mark.parametrize("limit", [100, 1000], ids=["header-too-big", "record-too-big"])
def test_a_record_that_does_not_fit_is_cut_off_and_written_once_space_is_back(
    tmp_path: Path, limit: int
) -> None:
    path = tmp_path / "s.jsonl"
    report = run_writer_child(path, limit)
    assert set(report["errors"]) == {errno.EFBIG}
    assert len(report["errors"]) == (4 if limit == 100 else 3)  # every sync while full
    while_full = report["sizes"][:4]
    assert all(size <= limit for size in while_full)
    assert while_full[1:] == [while_full[0]] * 3  # nothing torn left behind
    kinds = [r["type"] for r in records(path)]
    assert kinds == ["session", "message", "replace"] if limit == 1000 else ["session", "replace"]
    loaded = load(path)
    assert loaded.torn_lines == 0
    assert loaded.info.id == "s" and loaded.info.model == "m"
    assert [m["content"][:1] for m in loaded.messages] == ["s", "y"]


# --- end to end: `qwen-code -p` on a full disk ----------------------------------------------


def big_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    lines = [f"line {i:04d}: " + "lorem ipsum dolor sit amet " * 2 for i in range(300)]
    (root / "big.txt").write_text("\n".join(lines) + "\n")
    settings = {"general": {"checkpointing": {"enabled": False}}}  # only the session writes
    (qwen_home() / "settings.json").write_text(json.dumps(settings))
    return root


def start(root: Path, limit: int, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "qwen_code", *args],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=file_size_limit(limit),
    )


def continue_run(root: Path, fake_llm: FakeLLM) -> tuple[subprocess.CompletedProcess[str], Any]:
    fake_llm.script(strict(text("Continuing.")))
    done = run_qwen_code(root, "-c", "-p", "go on")
    assert done.returncode == 0, done.stderr
    return done, fake_llm.chat_requests[-1].body


def session_file(root: Path) -> SessionInfo:
    (info,) = list_sessions(qwen_home(), root)
    return info


LIMIT = 6000
"""Room for the header, the prompt and the tool call; not for the ~17 KB tool result."""


@needs_fsize_limit
def test_a_full_disk_mid_session_leaves_whole_lines_and_warns_once(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    root = big_project(tmp_path)
    fake_llm.script(
        tool_turn(call("read_file", file_path="big.txt")),
        tool_turn(call("list_directory", path=".")),
        text("It is a long file."),
    )
    proc = start(root, LIMIT, "-p", "what is in big.txt?")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "It is a long file." in out

    info = session_file(root)
    assert info.size <= LIMIT
    saved = [r["message"]["role"] for r in records(info.path) if r["type"] == "message"]
    assert saved == ["user", "assistant"]  # in order, up to the record that did not fit
    assert err.count("session could not be saved") == 1, err  # not once per message
    assert SAVE_WARNING in err

    resumed, body = continue_run(root, fake_llm)
    assert "damaged" not in resumed.stderr
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "user"]
    records(info.path)  # still whole lines after the resumed run appended to it


@needs_fsize_limit
@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs prlimit (Linux)")
def test_when_space_comes_back_the_missing_messages_are_written(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    root = big_project(tmp_path)
    running: list[subprocess.Popen[str]] = []

    def free_space(body: dict[str, Any]) -> Turn | HTTPError:
        """Asked after the tool result failed to save: lift the limit, then answer."""
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(running[0].pid, resource.RLIMIT_FSIZE, unlimited)
        return text("It is a long file.")

    fake_llm.script(tool_turn(call("read_file", file_path="big.txt")), free_space)
    running.append(start(root, LIMIT, "-p", "what is in big.txt?"))
    out, err = running[0].communicate(timeout=120)
    assert running[0].returncode == 0, err
    assert "It is a long file." in out

    info = session_file(root)
    sent = fake_llm.chat_requests[-1].body
    assert sent is not None
    assert records(info.path)[0]["type"] == "session"
    loaded = load(info.path)
    assert loaded.torn_lines == 0
    # the tool result, exactly once ("" for null content: the fake server is a local one)
    sent_messages = with_string_content(sent["messages"][1:])
    assert with_string_content(loaded.messages[:3]) == sent_messages
    assert [m["role"] for m in loaded.messages] == ["user", "assistant", "tool", "assistant"]
    assert err.count("session could not be saved") == 1, err
    assert "session saved again" in err

    resumed, body = continue_run(root, fake_llm)
    assert "damaged" not in resumed.stderr
    assert body["messages"][1:-1] == with_string_content(loaded.messages)
