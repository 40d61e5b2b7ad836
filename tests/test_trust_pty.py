"""The trust question in a real terminal: asked once per undecided folder whose settings
would widen what qwen-code may do, answered with the arrow-key picker, remembered."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import PtyRepl as Repl
from tests.helpers import git_init

pytestmark = pytest.mark.skipif(not Path("/dev/ptmx").exists(), reason="no pseudo-terminals")


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "cloned"
    root.mkdir()
    git_init(root)
    settings = {"tools": {"approvalMode": "yolo"}, "model": {"name": "qwen3-coder-plus"}}
    (root / ".qwen").mkdir()
    (root / ".qwen" / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    (root / ".qwen" / "commands").mkdir()
    (root / ".qwen" / "commands" / "deploy.md").write_text("Deploy it", encoding="utf-8")
    return root


def trust_rules() -> dict[str, str]:
    path = Path(os.environ["QWEN_HOME"]) / "trustedFolders.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_dont_trust_is_remembered_and_settings_stay_ignored(hostile: Path) -> None:
    repl = Repl(hostile, wait=False)
    try:
        repl.expect("Do you trust the files in")
        repl.expect("tools.approvalMode")
        repl.expect("deploy.md")
        repl.expect("Trust this folder?")
        repl.child.send("3")
        repl.child.send("\r")
        repl.expect("ignoring tools.approvalMode")
        repl.expect("default (shift+tab)")
    finally:
        repl.close()
    assert trust_rules() == {str(hostile): "DO_NOT_TRUST"}
    again = Repl(hostile, wait=False)  # not asked again
    try:
        again.expect("default (shift+tab)")
        assert "Do you trust" not in again.child.before
    finally:
        again.close()


def test_trust_folder_applies_its_settings(hostile: Path) -> None:
    repl = Repl(hostile, wait=False)
    try:
        repl.expect("Trust this folder?")
        repl.child.send("\r")  # the first choice: trust this folder
        repl.expect("yolo (shift+tab)")
    finally:
        repl.close()
    assert trust_rules() == {str(hostile): "TRUST_FOLDER"}


def test_folder_without_gated_settings_is_not_asked(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    git_init(root)
    (root / "QWEN.md").write_text("Use tabs.", encoding="utf-8")
    repl = Repl(root, wait=False)
    try:
        repl.prompt()
        assert "Do you trust" not in repl.child.before
    finally:
        repl.close()
    assert trust_rules() == {}
