"""The core never imports the screen, the CLI or the subsystems; start-up stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qwen_code"
CORE = (
    "agent",
    "tools",
    "llm",
    "session",
    "config.py",
    "settings_model.py",
    "settings_files.py",
    "trust.py",
    "credentials.py",
    "atomic.py",
    "textsafe.py",
    "memory.py",
    "prompts.py",
    "errors.py",
)
BANNED_IN_CORE = (
    "rich",
    "prompt_toolkit",
    "typer",
    "click",
    "qwen_code.ui",
    "qwen_code.cli",
    "qwen_code.serve",
    "qwen_code.proxy",
    "qwen_code.eval",
    "qwen_code.mcp",
)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_core_imports_no_ui_cli_or_subsystem() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] not in CORE:
            continue
        for line, module in imported_modules(path):
            if any(module == b or module.startswith(b + ".") for b in BANNED_IN_CORE):
                offenders.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert offenders == []


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_importing_the_cli_stays_light() -> None:
    modules = _modules_after("import qwen_code.cli")
    assert "openai" not in modules
    assert "rich.markdown" not in modules


def test_help_does_not_import_openai_or_rich_markdown() -> None:
    modules = _modules_after(
        "import contextlib, io\nfrom qwen_code.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])"
    )
    assert "openai" not in modules
    assert "rich.markdown" not in modules
