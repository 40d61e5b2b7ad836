"""Sessions: recorded as they happen, resumed with -c / -r, repaired, never holding keys."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from qwen_code.agent.conversation import CANCELLED_RESULT, Conversation
from qwen_code.cli import main
from qwen_code.config import qwen_home
from qwen_code.session.store import list_sessions, load
from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.helpers import PtyRepl, captured_env, make_repo, run_qwen_code, strict
from tests.ordering import order_problem

A_PY = {"a.py": "A = 1\n"}


def test_a_run_is_recorded_and_resumed_by_id_and_by_continue(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    root = make_repo(tmp_path / "proj", A_PY)
    fake_llm.script(tool_turn(call("read_file", file_path="a.py")), text("A is 1."))
    first = run_qwen_code(root, "-p", "what is A?", "-o", "json")
    assert first.returncode == 0, first.stderr
    session_id = json.loads(first.stdout)["session_id"]
    (info,) = list_sessions(qwen_home(), root)
    assert info.id == session_id
    assert info.first_message == "what is A?"
    assert [m["role"] for m in load(info.path).messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]

    fake_llm.script(strict(text("A is still 1.")), strict(text("Third.")))
    again = run_qwen_code(root, "-r", session_id[:8], "-p", "and now?", "-o", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["session_id"] == session_id
    roles = [m["role"] for m in fake_llm.chat_requests[-1].body["messages"]]  # type: ignore[index]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    latest = run_qwen_code(root, "-c", "-p", "third")
    assert latest.returncode == 0, latest.stderr
    assert len(fake_llm.chat_requests[-1].body["messages"]) == 8  # type: ignore[index]
    assert len(list_sessions(qwen_home(), root)) == 1


def test_unknown_session_and_nothing_to_continue_are_bad_input(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    root = make_repo(tmp_path / "proj", A_PY)
    missing = run_qwen_code(root, "-r", "nope", "-p", "hi")
    assert missing.returncode == 42
    assert "No saved session 'nope'" in missing.stderr
    nothing = run_qwen_code(root, "-c", "-p", "hi")
    assert nothing.returncode == 42
    assert fake_llm.chat_requests == []


def test_transcripts_never_hold_the_api_key(tmp_path: Path, fake_llm: FakeLLM) -> None:
    root = make_repo(tmp_path / "proj", A_PY)
    env = {**os.environ, "OPENAI_API_KEY": "sk-very-secret-key-123"}
    fake_llm.script(text("ok"))
    assert run_qwen_code(root, "-p", "hi", env=env).returncode == 0
    (info,) = list_sessions(qwen_home(), root)
    assert "sk-very-secret-key-123" not in info.path.read_text()


def test_sessions_cli_list_show_delete(tmp_path: Path, fake_llm: FakeLLM) -> None:
    root = make_repo(tmp_path / "proj", A_PY)
    fake_llm.script(text("Hello from the model."))
    assert run_qwen_code(root, "-p", "say hello").returncode == 0
    listing = run_qwen_code(root, "sessions", "list")
    assert "say hello" in listing.stdout
    session_id = listing.stdout.split()[0]
    shown = run_qwen_code(root, "sessions", "show", session_id)
    assert "Hello from the model." in shown.stdout
    assert run_qwen_code(root, "sessions", "delete", session_id).returncode == 0
    assert list_sessions(qwen_home(), root) == []


def test_a_torn_last_line_is_skipped(tmp_path: Path, fake_llm: FakeLLM) -> None:
    root = make_repo(tmp_path / "proj", A_PY)
    fake_llm.script(text("ok"))
    assert run_qwen_code(root, "-p", "hi").returncode == 0
    (info,) = list_sessions(qwen_home(), root)
    with info.path.open("a") as fh:
        fh.write('{"type": "message", "message": {"role": "user", "con')
    loaded = load(info.path)
    assert loaded.torn_lines == 1
    assert [m["role"] for m in loaded.messages] == ["user", "assistant"]


def test_repairs_of_each_broken_shape() -> None:
    conversation = Conversation.with_system("sys")
    conversation.messages += [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
        {"role": "tool", "tool_call_id": "ghost", "content": "orphan"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "x", "arguments": "{'a': 1"}},
                {"id": "c2", "type": "function", "function": {"name": "y", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": "done"},
        {"role": "user", "content": "three"},
    ]
    fixes = conversation.repair()
    assert len(fixes) >= 4
    assert order_problem(conversation.messages) is None
    roles = [m["role"] for m in conversation.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    assert conversation.messages[1]["content"] == "one\n\ntwo"
    assert conversation.messages[2]["tool_calls"][0]["function"]["arguments"] == "{}"
    answered = {
        m["tool_call_id"]: m["content"] for m in conversation.messages if m["role"] == "tool"
    }
    assert answered == {"c2": "done", "c1": CANCELLED_RESULT}
    assert conversation.repair() == []  # idempotent


KILL_TRIALS = 5


def test_sigkill_at_random_points_then_continue_works(tmp_path: Path) -> None:
    """A real process killed mid-session; `--continue` then sends a request a strict server
    accepts. The kill points are spread over start-up, streaming and tool runs: every
    third trial is killed during start-up, the others at a random point after the first
    message was saved (counted from then, so a slow machine kills at the same points)."""
    rng = random.Random(1234)
    root = make_repo(tmp_path / "proj", A_PY)
    resumed = 0
    for trial in range(KILL_TRIALS):
        saved = len(list_sessions(qwen_home(), root))
        with FakeLLM() as server:
            env = {**os.environ, "OPENAI_BASE_URL": server.base_url}
            steps = [
                tool_turn(
                    call("run_shell_command", command=f"sleep 0.2; echo step{i} >> log.txt"),
                    delay_s=0.1,
                )
                for i in range(6)
            ]
            server.script(*steps, Turn(text="done " * 200, chunk_delay_s=0.002))
            proc = subprocess.Popen(
                [sys.executable, "-m", "qwen_code", "-p", f"work {trial}", "--yolo"],
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
            in_start_up = trial % 3 == 0
            if in_start_up:
                time.sleep(rng.uniform(0.1, 0.8))
            else:
                _wait_for_a_new_session(root, saved, proc)
                time.sleep(rng.uniform(0.0, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if len(list_sessions(qwen_home(), root)) == saved:
            assert in_start_up, trial  # killed before the first message was saved
            continue
        with FakeLLM() as server:
            env = {**os.environ, "OPENAI_BASE_URL": server.base_url}
            server.script(strict(text("Continuing.")))
            result = run_qwen_code(root, "-c", "-p", "go on", "--yolo", env=env)
            assert result.returncode == 0, (trial, result.stderr)
            assert server.unscripted == 0
            body = server.chat_requests[-1].body
            assert body is not None
            assert order_problem(body["messages"]) is None
            resumed += 1
    assert resumed >= KILL_TRIALS - len(range(0, KILL_TRIALS, 3))


def _wait_for_a_new_session(root: Path, saved: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the running process has saved its first message (more than `saved` sessions
    are listed). The deadline only stops a broken test; it is not a speed assertion."""
    deadline = time.monotonic() + 120
    while len(list_sessions(qwen_home(), root)) == saved:
        assert proc.poll() is None, "the process ended before saving anything"
        assert time.monotonic() < deadline, "no session was saved"
        time.sleep(0.05)


def test_peek_describes_a_session_like_a_full_load(tmp_path: Path) -> None:
    """Listing reads only what it shows; its counts match a full replay, torn line and
    rewritten history included."""
    from qwen_code.session.store import SessionWriter, load, peek

    path = tmp_path / "s.jsonl"
    writer = SessionWriter(path, session_id="s", cwd=tmp_path, model="m")
    history = [{"role": "user", "content": "first  task\nwith lines"}]
    history += [{"role": "assistant", "content": f"answer {i}"} for i in range(5)]
    writer.sync(history)
    assert (peek(path).messages, peek(path).first_message) == (6, "first task with lines")
    compressed = [{"role": "user", "content": "summary"}, {"role": "assistant", "content": "ok"}]
    writer.sync(compressed)  # a rewrite: a replace record
    writer.sync([*compressed, {"role": "user", "content": "next"}])
    writer.close()
    with path.open("ab") as fh:
        fh.write(b'{"type": "message", "message": {"role": "assis')  # killed mid-write
    loaded, peeked = load(path), peek(path)
    assert peeked.messages == len(loaded.messages) == 3
    assert peeked.first_message == "first task with lines"  # what the session began with
    assert (peeked.id, peeked.model, peeked.size) == ("s", "m", path.stat().st_size)


DAMAGED = "skipped 1 damaged line(s) in session file"


def test_continue_after_a_torn_last_line_says_so_and_keeps_new_records_whole(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    """Before: the next record was glued to the torn line (both lost) and `-c` said
    nothing about what it skipped."""
    root = make_repo(tmp_path / "proj", A_PY)
    fake_llm.script(text("ok"), text("Continuing."), text("Third."))
    assert run_qwen_code(root, "-p", "hi").returncode == 0
    (info,) = list_sessions(qwen_home(), root)
    with info.path.open("ab") as fh:
        fh.write(b'{"type": "message", "message": {"role": "assistant", "tool_ca')  # torn
    resumed = run_qwen_code(root, "-c", "-p", "next")
    assert resumed.returncode == 0, resumed.stderr
    assert f"qwen-code: {DAMAGED} {info.path}\n" in resumed.stderr
    loaded = load(info.path)
    assert loaded.torn_lines == 1
    assert [m.get("content") for m in loaded.messages] == ["hi", "ok", "next", "Continuing."]
    again = run_qwen_code(root, "-c", "-p", "third")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count(DAMAGED) == 1
    assert len(load(info.path).messages) == 6


def test_continue_in_the_repl_says_it_skipped_damaged_lines(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    root = make_repo(tmp_path / "proj", A_PY)
    fake_llm.script(text("ok"))
    assert run_qwen_code(root, "-p", "hi").returncode == 0
    (info,) = list_sessions(qwen_home(), root)
    with info.path.open("ab") as fh:
        fh.write(b'{"type": "message", "mess\n')  # damaged, then whole lines again
    repl = PtyRepl(root, "-c", wait=False)
    try:
        repl.expect(DAMAGED)
        repl.prompt()
    finally:
        repl.close()


# --- listings: what can be continued, titled by what was asked, headless runs marked ----


def test_the_header_comes_with_the_first_message_and_says_what_the_session_is(
    tmp_path: Path,
) -> None:
    from qwen_code.session.store import SessionWriter, peek

    path = tmp_path / "s.jsonl"
    writer = SessionWriter(path, session_id="s", cwd=tmp_path, model="m")
    writer.label(title="explain   this\n", headless=True)
    writer.sync([])
    assert not path.exists()  # opened and left: nothing to list
    history = [{"role": "user", "content": "A = 1\n\nexplain this"}]
    writer.sync(history)
    writer.close()
    info = peek(path)
    assert (info.title, info.first_message, info.headless) == (
        "explain this",
        "A = 1 explain this",
        True,
    )
    assert not info.empty
    resumed = SessionWriter(path, session_id="s", cwd=tmp_path, model="m")
    resumed.label(title="something else", headless=False)  # a continued session keeps its own
    resumed.adopt(history)
    resumed.sync([*history, {"role": "assistant", "content": "It sets A."}])
    resumed.close()
    loaded = load(path)
    assert (loaded.info.title, loaded.info.headless, loaded.info.messages) == (
        "explain this",
        True,
        2,
    )
    assert [r["type"] for r in map(json.loads, path.read_text().splitlines())] == [
        "session",
        "message",
        "message",
    ]


def test_a_history_that_starts_with_a_replace_record_still_has_its_prompt(tmp_path: Path) -> None:
    from qwen_code.session.store import SessionWriter, peek

    path = tmp_path / "s.jsonl"
    writer = SessionWriter(path, session_id="s", cwd=tmp_path, model="m")
    writer.replace([{"role": "user", "content": "restored task"}])
    writer.close()
    assert (peek(path).title, peek(path).empty) == ("restored task", False)


def old_empty_session(root: Path, session_id: str) -> Path:
    """What a REPL opened and left wrote before the header waited for a message."""
    from qwen_code.session.store import sessions_dir

    path = sessions_dir(qwen_home(), root) / f"{session_id}.jsonl"
    header = {"type": "session", "id": session_id, "cwd": str(root), "model": "m", "created": 1}
    path.write_text(json.dumps(header) + "\n")
    later = time.time() + 60  # the newest file: listings must look past it
    os.utime(path, (later, later))
    return path


def test_sessions_without_a_prompt_are_hidden_but_can_still_be_named(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    root = make_repo(tmp_path / "proj", A_PY)
    fake_llm.script(text("Hello."), text("Going on."), text("Started."))
    code, out, err = in_process(root, "-p", "say hello", "-o", "json")
    assert code == 0, err
    hello_id = json.loads(out)["session_id"]
    empty_id = "0123abcd-0000-4000-8000-000000000000"
    old_empty_session(root, empty_id)

    _, out, err = in_process(root, "sessions", "list")
    (line,) = out.splitlines()
    assert line.startswith(hello_id[:8]) and line.endswith(" KB  -p  say hello")
    assert "1 session(s) without a prompt not shown; --all lists them" in err
    _, out, _ = in_process(root, "sessions", "list", "--all")
    assert empty_id[:8] in out and "(no message)" in out

    code, out, err = in_process(root, "-c", "-p", "go on", "-o", "json")  # skips the empty one
    assert code == 0, err
    assert json.loads(out)["session_id"] == hello_id
    code, out, err = in_process(root, "-r", empty_id[:8], "-p", "start here", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["session_id"] == empty_id
    assert user_messages_of(fake_llm) == ["start here"]


def test_a_title_cannot_send_escape_sequences_to_the_terminal(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    """A prompt (or, in older sessions, a piped file's first line) holding escapes."""
    root = make_repo(tmp_path / "proj", A_PY)
    fake_llm.script(text("ok"))
    code, _, err = in_process(root, "-p", "fix\x1b]52;c;cm0K\x07 this\x1b[2J\ttoo")
    assert code == 0, err
    _, out, _ = in_process(root, "sessions", "list")
    assert "\x1b" not in out and "\x07" not in out
    assert out.rstrip().endswith("fix ]52;c;cm0K this [2J too")  # harmless as text


def in_process(cwd: Path, *argv: str) -> tuple[int, str, str]:
    """`qwen-code ARGV` run in this process: (exit code, stdout, stderr)."""
    env = captured_env(cwd, qwen_home())
    code = main(list(argv), env=env)
    return code, env.stdout.getvalue(), env.stderr.getvalue()  # type: ignore[attr-defined]


def user_messages_of(fake: FakeLLM) -> list[str]:
    body = fake.chat_requests[-1].body
    assert body is not None
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


async def test_a_headless_session_named_by_its_prompt_and_the_hint_to_resume_it(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    """What `cat calc.py | qwen-code -p "explain this"` records: the first user message is the
    piped file, then the prompt; the listing shows the prompt, marked `-p`."""
    from qwen_code.agent.approval import HeadlessApprover
    from qwen_code.config import Flags, load_settings, resolve_provider
    from qwen_code.session.persistence import name_session
    from qwen_code.session.resume import describe, resume_hint
    from qwen_code.session.setup import open_session

    root = make_repo(tmp_path / "proj", A_PY)
    settings = load_settings(Flags(), cwd=root)
    session = await open_session(
        settings,
        resolve_provider(settings),
        cwd=root,
        home=qwen_home(),
        approver=HeadlessApprover("default"),
        headless=True,
    )
    name_session(session, "explain this")
    fake_llm.script(text("It adds."))
    try:
        assert resume_hint(session) is None  # nothing saved yet
        [event async for event in session.run("def add(a, b):\n    return a + b\n\nexplain this")]
        assert resume_hint(session) == f"Resume this session with: qwen-code -r {session.id}"
    finally:
        await session.aclose()
    (info,) = list_sessions(qwen_home(), root)
    assert (info.title, info.headless) == ("explain this", True)
    assert info.first_message.startswith("def add(a, b):")
    assert describe(info).endswith(" KB  -p  explain this")


def test_piped_stdin_is_listed_by_the_prompt_and_marked_headless(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    root = make_repo(tmp_path / "proj", A_PY)
    fake_llm.script(text("It sets A."))
    done = run_qwen_code(root, "-p", "explain this", stdin="A = 1\nB = 2\n")
    assert done.returncode == 0, done.stderr
    assert user_messages_of(fake_llm) == ["A = 1\nB = 2\n\nexplain this"]
    (info,) = list_sessions(qwen_home(), root)
    assert (info.title, info.headless) == ("explain this", True)
    listing = run_qwen_code(root, "sessions", "list")
    assert listing.stdout.rstrip().endswith(" KB  -p  explain this")
