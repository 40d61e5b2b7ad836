"""Checkpoints: snapshot before the first change of a prompt, restore files and conversation,
never touching the user's own git state."""

from __future__ import annotations

from pathlib import Path

from qwen_code.config import qwen_home
from qwen_code.session.checkpoints import Checkpoints
from qwen_code.session.persistence import Persistence
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import git, git_init, repl_in, run_qwen_code


def user_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git_init(root)
    (root / "app.py").write_text("VALUE = 1\n")
    (root / "keep.txt").write_text("keep\n")
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    (root / "build" / "big.bin").write_bytes(b"x" * 1000)
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init")
    git(root, "branch", "feature")
    (root / "stashed.txt").write_text("wip\n")
    git(root, "add", "stashed.txt")
    git(root, "stash", "-q")
    (root / "untracked.txt").write_text("mine\n")
    return root


def git_state(root: Path) -> tuple[str, str, str, str]:
    return (
        git(root, "status", "--porcelain"),
        git(root, "branch", "--list"),
        git(root, "stash", "list"),
        git(root, "rev-parse", "HEAD"),
    )


def test_round_trip_in_a_git_repo_leaves_the_users_git_alone(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    root = user_repo(tmp_path)
    before = git_state(root)
    fake_llm.script(
        tool_turn(call("edit", file_path="app.py", old_string="VALUE = 1", new_string="VALUE = 2")),
        tool_turn(call("run_shell_command", command="rm keep.txt && echo new > created.txt")),
        text("Changed things."),
    )
    result = run_qwen_code(root, "-p", "change it", "--yolo")
    assert result.returncode == 0, result.stderr
    assert (root / "app.py").read_text() == "VALUE = 2\n"
    assert not (root / "keep.txt").exists()

    listing = run_qwen_code(root, "checkpoints", "list")
    assert "change it" in listing.stdout
    checkpoint = listing.stdout.split()[0]
    restored = run_qwen_code(root, "checkpoints", "restore", checkpoint)
    assert restored.returncode == 0, restored.stderr
    assert (root / "app.py").read_text() == "VALUE = 1\n"
    assert (root / "keep.txt").read_text() == "keep\n"
    assert not (root / "created.txt").exists()
    assert (root / "untracked.txt").read_text() == "mine\n"
    assert (root / "build" / "big.bin").exists()
    assert git_state(root) == before  # status, branches, stash and HEAD as they were
    shadow = qwen_home() / "history"
    assert not any(p.name == "big.bin" for p in shadow.rglob("*"))
    # The restore itself can be undone: the state before it was saved as a checkpoint.
    undo = restored.stdout.split("qwen-code checkpoints restore ")[-1].strip()
    again = run_qwen_code(root, "checkpoints", "restore", undo)
    assert again.returncode == 0, again.stderr
    assert (root / "app.py").read_text() == "VALUE = 2\n"
    assert not (root / "keep.txt").exists()
    assert (root / "created.txt").read_text() == "new\n"
    assert (root / "untracked.txt").read_text() == "mine\n"


def test_round_trip_in_a_plain_directory(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    (root / "notes.md").write_text("v1\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("dep\n")
    checkpoints = Checkpoints(tmp_path / "home", root)
    first = checkpoints.create(session_id="s", turn=1, prompt="p", messages=[])
    (root / "notes.md").write_text("v2\n")
    (root / "extra.md").write_text("new\n")
    (root / "node_modules" / "dep.js").write_text("changed dep\n")
    (listed,) = checkpoints.list()
    assert set(listed.changed) == {"notes.md", "extra.md"}
    result = checkpoints.restore(first[:10])
    assert (root / "notes.md").read_text() == "v1\n"
    assert not (root / "extra.md").exists()
    assert result.deleted == ("extra.md",)
    assert (root / "node_modules" / "dep.js").read_text() == "changed dep\n"  # excluded


async def test_restore_in_the_session_brings_back_files_and_conversation(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    from qwen_code.ui import commands

    root = user_repo(tmp_path)
    fake_llm.script(
        text("first answer"),
        tool_turn(call("write_file", file_path="app.py", content="VALUE = 99\n")),
        text("rewrote it"),
    )
    async with repl_in(root, yolo=True) as (repl, _):
        session = repl.session
        console = repl.console
        await repl.send("hello")
        await repl.send("rewrite app.py")
        assert (root / "app.py").read_text() == "VALUE = 99\n"
        await commands.dispatch(repl, "/restore")
        listing = console.export_text(clear=False)
        assert "rewrite app.py" in listing
        persistence = session.observer(Persistence)
        assert persistence is not None
        checkpoint = persistence.last_checkpoint
        assert checkpoint is not None
        await commands.dispatch(repl, f"/restore {checkpoint[:8]}")
        assert (root / "app.py").read_text() == "VALUE = 1\n"
        roles = [m["role"] for m in session.agent.conversation.messages]
        assert roles == ["system", "user", "assistant"]  # back to before the prompt
        undo = console.export_text(clear=False).split("Changed your mind? /restore ")[-1]
        await commands.dispatch(repl, f"/restore {undo.split()[0]}")
    assert (root / "app.py").read_text() == "VALUE = 99\n"
    roles = [m["role"] for m in session.agent.conversation.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "tool", "assistant"]


def test_checkpointing_can_be_turned_off(tmp_path: Path, fake_llm: FakeLLM) -> None:
    root = user_repo(tmp_path)
    (root / ".qwen").mkdir()
    (root / ".qwen" / "settings.json").write_text(
        '{"general": {"checkpointing": {"enabled": false}}}'
    )
    fake_llm.script(
        tool_turn(call("edit", file_path="app.py", old_string="VALUE = 1", new_string="VALUE = 3")),
        text("ok"),
    )
    assert run_qwen_code(root, "-p", "edit", "--yolo").returncode == 0
    assert "No checkpoints" in run_qwen_code(root, "checkpoints", "list").stdout


def test_a_checkpoint_is_the_state_before_the_prompt(tmp_path: Path, fake_llm: FakeLLM) -> None:
    """The snapshot is taken while the model answers, before any tool of the prompt runs:
    a shell command ahead of the first edit is undone too; a prompt that changes nothing
    leaves no checkpoint."""
    root = user_repo(tmp_path)
    fake_llm.script(text("Nothing to change."))
    assert run_qwen_code(root, "-p", "look only", "--yolo").returncode == 0
    assert "No checkpoints" in run_qwen_code(root, "checkpoints", "list").stdout
    fake_llm.script(
        tool_turn(call("run_shell_command", command="echo made > made.txt && rm keep.txt")),
        tool_turn(call("edit", file_path="app.py", old_string="VALUE = 1", new_string="VALUE = 5")),
        text("Done."),
    )
    assert run_qwen_code(root, "-p", "shell then edit", "--yolo").returncode == 0
    listing = run_qwen_code(root, "checkpoints", "list").stdout.splitlines()
    assert len(listing) == 1 and "shell then edit" in listing[0]
    assert run_qwen_code(root, "checkpoints", "restore", listing[0].split()[0]).returncode == 0
    assert (root / "app.py").read_text() == "VALUE = 1\n"
    assert (root / "keep.txt").read_text() == "keep\n"
    assert not (root / "made.txt").exists()


def test_two_sessions_checkpointing_in_turn_keep_both(tmp_path: Path) -> None:
    """A snapshot whose parent moved (another session checkpointed meanwhile) is re-parented."""
    root = tmp_path / "plain"
    root.mkdir()
    (root / "a.txt").write_text("1\n")
    home = tmp_path / "home"
    first, second = Checkpoints(home, root), Checkpoints(home, root)
    early = first.snapshot(session_id="s1", turn=1, prompt="one")
    second.create(session_id="s2", turn=1, prompt="two", messages=[])
    first.adopt(early, [])
    assert [c.prompt for c in first.list()] == ["one", "two"]


def _checkpoint_many(home: Path, root: Path, name: str, count: int) -> None:
    checkpoints = Checkpoints(home, root)
    for index in range(count):
        (root / f"{name}.txt").write_text(f"{index}\n")
        checkpoints.create(session_id=name, turn=index, prompt=f"{name}-{index}", messages=[])


def test_two_processes_checkpointing_at_once_take_turns(tmp_path: Path) -> None:
    """Two sessions in one project share the shadow index: a file lock makes their git
    calls take turns, so no checkpoint fails on git's index.lock and none is lost."""
    import multiprocessing

    root = tmp_path / "plain"
    root.mkdir()
    home = tmp_path / "home"
    Checkpoints(home, root).warm()  # the repository exists before the race starts
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_checkpoint_many, args=(home, root, name, 8))
        for name in ("one", "two")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    prompts = {c.prompt for c in Checkpoints(home, root).list(limit=100)}
    assert prompts == {f"{n}-{i}" for n in ("one", "two") for i in range(8)}


def test_large_new_files_are_not_snapshotted(tmp_path: Path) -> None:
    """A big file nobody ignored (a dataset) stays out of the shadow repository and is
    left alone on restore; the rest is checkpointed as usual."""
    from qwen_code.session.checkpoints import MAX_FILE_BYTES

    root = tmp_path / "plain"
    root.mkdir()
    (root / "small.txt").write_text("v1\n")
    for name in ("data.bin", "odd [v1]*.bin "):
        with (root / name).open("wb") as big:
            big.truncate(MAX_FILE_BYTES + 1)  # sparse: cheap to make
    home = tmp_path / "home"
    checkpoints = Checkpoints(home, root)
    first = checkpoints.create(session_id="s", turn=1, prompt="p", messages=[])
    stored = git(root, f"--git-dir={checkpoints.git_dir}", "ls-tree", "-r", "--name-only", first)
    assert stored.split("\n")[:-1] == ["small.txt"]
    (root / "small.txt").write_text("v2\n")
    (root / "data.bin").write_bytes(b"changed")
    checkpoints.restore(first[:8])
    assert (root / "small.txt").read_text() == "v1\n"
    assert (root / "data.bin").read_bytes() == b"changed"  # not ours to restore
    assert (root / "odd [v1]*.bin ").stat().st_size == MAX_FILE_BYTES + 1
    size = sum(p.stat().st_size for p in (home / "history").rglob("*") if p.is_file())
    assert size < 1024 * 1024
