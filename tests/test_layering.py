"""The core never imports the screen, the CLI or the subsystems; start-up stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.fakeserver import FakeLLM, text

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
    "processes.py",
    "sandbox",
    "mcp",
    "environment.py",
    "version.py",
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
    "qwen_code.sdk",
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


def test_only_the_package_root_reaches_the_python_api() -> None:
    """`qwen_code.sdk` is a front end on top of everything: no module imports it (the
    package root loads it lazily, by name, on first use of `qwen_code.query` & co.; its
    own import of it is for type checkers only)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] in ("sdk", "__init__.py"):
            continue
        for line, module in imported_modules(path):
            if module == "qwen_code.sdk" or module.startswith("qwen_code.sdk."):
                offenders.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert offenders == []


def test_the_python_api_is_loaded_on_first_use_only() -> None:
    modules = _modules_after("import qwen_code\nassert qwen_code.__version__")
    assert "qwen_code.sdk" not in modules
    modules = _modules_after("from qwen_code import query, Client, Options")
    assert "qwen_code.sdk" in modules
    assert "openai" not in modules


def test_every_slash_command_module_is_listed() -> None:
    """The REPL imports the `commands_*` modules from an explicit list, not by scanning
    the folder: a new module that is not listed would never register its commands."""
    from qwen_code.ui.commands import COMMAND_MODULES

    on_disk = sorted(f"qwen_code.ui.{p.stem}" for p in (PACKAGE / "ui").glob("commands_*.py"))
    assert sorted(COMMAND_MODULES) == on_disk


def test_a_headless_run_does_not_import_openai(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """The model client talks HTTP through httpx: openai (a dev dependency, for the wire
    contract test) is not imported on the way to the answer."""
    fake_llm.script(text("ok"))
    probe = (
        "import contextlib, io, sys\n"
        "from qwen_code.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    code = main(['-p', 'say ok'])\n"
        "assert code == 0 and out.getvalue().strip() == 'ok', (code, out.getvalue())\n"
        "print('\\n'.join(sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    modules = set(run.stdout.split())
    assert "httpx" in modules
    assert not [m for m in modules if m == "openai" or m.startswith("openai.")]
    assert len(fake_llm.chat_requests) == 1


def test_version_is_answered_before_the_parser_is_imported() -> None:
    probe = (
        "import contextlib, io\nfrom qwen_code.__main__ import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    assert main(['--version']) == 0 and main(['-v']) == 0\n"
        "assert out.getvalue().count('qwen-code ') == 2, out.getvalue()"
    )
    modules = _modules_after(probe)
    assert "typer" not in modules
    assert "qwen_code.cli" not in modules
