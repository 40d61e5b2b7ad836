"""Text that is not the program's own (file names, command output, usage strings, what a
model, a user or an MCP server wrote) prints verbatim in the REPL: `[...]` is never taken
for rich markup, and `[/x]` never raises a MarkupError.

In-process REPLs on pipe input with a recording console (the `repl` fixture), and a
static check of every module that imports rich: text built with an f-string and printed
through markup may carry only constants and numbers; anything else goes through `Text`
or `rich.markup.escape`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.input import PipeInput

import qwen_code
from qwen_code.config import qwen_home
from qwen_code.custom_commands import Discovery
from qwen_code.ui import commands_custom
from qwen_code.ui.mcp_prompts import register_prompts
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import commands_dir, git_init, output, repl_in, write, write_json

HOSTILE_FILE = "a[red]b[bold].py"  # a file name cannot hold the `/` of a closing tag
COMMAND_HELP = "Fix [what] in a[red]b[/red].py [/x]"
SKILL_HELP = "Tidy [x] up [/oops]"
TOOL_HELP = "[ERROR] scans a[red]b[/red].py [/x]"
PROMPT_HELP = "Draft [title] for [/bold]"

MCP_SERVER = f"""
from mcp.server.mcpserver import MCPServer

server = MCPServer("brackets", log_level="WARNING")


@server.tool(description={TOOL_HELP!r})
def scan() -> str:
    return "ok"


@server.prompt(description={PROMPT_HELP!r})
def draft() -> str:
    return "Draft it."


server.run()
"""


@pytest.fixture
def project(project: Path) -> Path:
    """The shared git project with a hostile file name, custom command and skill in it."""
    write(project / HOSTILE_FILE, "print('hi')\n")
    write(commands_dir(project) / "fix.md", f"---\ndescription: {COMMAND_HELP}\n---\nFix it.")
    skill = f"---\nname: tidy\ndescription: {SKILL_HELP}\n---\nTidy the code.\n"
    write(project / ".qwen" / "skills" / "tidy" / "SKILL.md", skill)
    return project


@pytest.fixture
def mcp_server(tmp_path: Path) -> Iterator[None]:
    """An MCP server (stdio) whose tool and prompt descriptions hold markup-like text."""
    script = write(tmp_path / "brackets_server.py", MCP_SERVER)
    server = {"command": sys.executable, "args": [str(script)]}
    write_json(qwen_home() / "settings.json", {"mcpServers": {"brackets": server}})
    yield
    register_prompts(None)
    commands_custom.register(Discovery())


async def test_help_prints_usage_and_descriptions_verbatim(repl: tuple[Repl, PipeInput]) -> None:
    r, _ = repl
    await r.handle("/help")
    shown = output(r)
    compress = next(line for line in shown.splitlines() if line.startswith("/compress "))
    assert compress.rstrip().endswith("/compress [what to focus on]")
    assert "/directory add PATH[,PATH...]" in shown
    assert COMMAND_HELP in shown  # a custom command's description
    assert f"Skill: {SKILL_HELP}" in shown  # a skill's, brackets and all
    await r.handle("/commands")
    assert COMMAND_HELP in output(r)


async def test_what_the_user_types_prints_verbatim(repl: tuple[Repl, PipeInput]) -> None:
    r, _ = repl
    await r.handle("/[/x]")
    assert "Unknown command /[/x]." in output(r)
    await r.handle("/approval-mode [bold]yolo")
    assert "Unknown mode '[bold]yolo'." in output(r)
    assert r.session.runner.mode == "default"
    await r.handle("/commands bogus")
    assert "Usage: /commands [reload]" in output(r)
    await r.handle("/dir add missing[/x]")
    assert "missing[/x]" in output(r)


async def test_a_model_name_prints_verbatim(repl: tuple[Repl, PipeInput]) -> None:
    r, _ = repl
    await r.handle("/model qw[/x]en [bold]")
    shown = output(r)
    assert "'qw[/x]en [bold]' is not in the server's list" in shown
    assert "Model: qw[/x]en [bold]" in shown
    for name in ("/model", "/about"):
        await r.handle(name)
        assert "qw[/x]en [bold]" in output(r), name


async def test_an_mcp_servers_text_prints_verbatim(
    mcp_server: None, project: Path, fake_llm: FakeLLM
) -> None:
    async with repl_in(project) as (r, _):
        await r.handle("/tools")
        tools = output(r)
        assert "mcp__brackets__scan" in tools and TOOL_HELP in tools
        await r.handle("/mcp tools brackets")
        assert TOOL_HELP in output(r)
        await r.handle("/help")
        assert f"MCP: brackets · {PROMPT_HELP}" in output(r)


async def test_command_output_and_model_text_print_verbatim(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    await r.handle("!ls")
    assert HOSTILE_FILE in output(r)
    await r.handle("/approval-mode yolo")
    shell = call("run_shell_command", command="echo '[ERROR] a[/x] [bold]b'")
    fake_llm.script(tool_turn(shell), text("Found [link] and a[/x] in [bold]b."))
    await r.send("run it")
    shown = output(r)
    assert "[ERROR] a[/x] [bold]b" in shown  # the tool's output
    assert "Found [link] and a[/x] in [bold]b." in shown  # the model's answer


# --- the REPL's own modules ---------------------------------------------------------------


async def test_echoes_and_attachments_print_verbatim(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    fake_llm.script(text("tidied"), text("read"), text("not found"))
    await r.handle("/tidy a[/x] b")  # a skill's command is echoed
    assert "> /tidy a[/x] b" in output(r)
    await r.handle(f"look at @{HOSTILE_FILE}")
    assert f"attached {HOSTILE_FILE}" in output(r)
    await r.handle("look at @gone[/x].py")
    assert "gone[/x].py" in output(r)


async def test_a_project_path_prints_verbatim(tmp_path: Path, fake_llm: FakeLLM) -> None:
    folder = tmp_path / "p[bold]x"
    folder.mkdir()
    git_init(folder)
    write(folder / "QWEN.md", "# Rules\nBe brief.\n")
    async with repl_in(folder) as (r, _):
        for name in ("/about", "/directory show", "/memory show"):
            await r.handle(name)
            assert str(folder) in output(r), name


async def test_session_ids_and_checkpoints_print_verbatim(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    await r.handle("/approval-mode yolo")
    write_call = call("write_file", file_path="new.py", content="x = 1\n")
    fake_llm.script(tool_turn(write_call), text("written"))
    await r.send("write [/x] a file")
    output(r)
    await r.handle("/resume nope[/x]")
    assert "No saved session 'nope[/x]'." in output(r)
    await r.handle("/restore")
    assert "write [/x] a file" in output(r)
    await r.handle("/restore nope[/x]")
    assert "nope[/x]" in output(r)


# --- static check ------------------------------------------------------------------------

SINKS = {"print", "rule", "status", "log", "input", "add_row", "add_column", "from_markup"}
"""Calls that read a `str` argument as rich markup (`Panel` and `Table` titles too)."""
NUMERIC_SPEC = set(",_dfeEgGn%xXob")
SAFE_CALLS = {"escape", "len", "int", "round", "sum"}
ARITHMETIC = (ast.Sub, ast.Div, ast.FloorDiv, ast.Pow)
PACKAGE = Path(qwen_code.__file__).parent


class MarkupCheck:
    """Finds strings built from text of unknown origin (with an f-string or `+`) passed
    where rich reads markup.

    Proven safe: string constants, numbers (a numeric format spec, `len(...)`, arithmetic),
    `escape(...)` and joins of it, module names bound to string literals (and their
    items), and local names every assignment of which is proven safe. A parameter is not.
    """

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.constants = _module_constants(tree)
        self.locals: dict[str, list[ast.expr]] = {}

    def offenders(self) -> Iterator[tuple[int, str]]:
        for scope in [self.tree, *_functions(self.tree)]:
            self.locals = _assignments(scope)
            for node in _own_calls(scope):
                if any(_is_string(a) and not self._safe(a, set()) for a in _markup_args(node)):
                    yield node.lineno, ast.unparse(node)[:120]

    def _safe(self, node: ast.expr, seen: set[str]) -> bool:
        match node:
            case ast.Constant():
                return True
            case ast.JoinedStr(values=values):
                parts = [v for v in values if isinstance(v, ast.FormattedValue)]
                return all(self._safe_value(v, seen) for v in parts)
            case ast.BinOp(op=ast.Add(), left=left, right=right):
                return self._safe(left, seen) and self._safe(right, seen)
            case ast.BinOp(op=op):
                return isinstance(op, ARITHMETIC)
            case ast.IfExp(body=body, orelse=orelse):
                return self._safe(body, seen) and self._safe(orelse, seen)
            case ast.Call():
                return _call_name(node) in SAFE_CALLS or _joins_escaped(node)
            case ast.Subscript(value=ast.Name(id=name)):
                return name in self.constants
            case ast.Name(id=name) if name in self.constants:
                return True
            case ast.Name(id=name) if name in self.locals and name not in seen:
                return all(self._safe(value, seen | {name}) for value in self.locals[name])
        return False

    def _safe_value(self, node: ast.FormattedValue, seen: set[str]) -> bool:
        if node.format_spec is not None and node.conversion == -1:
            spec = "".join(str(getattr(v, "value", "")) for v in node.format_spec.values)
            if spec and spec[-1] in NUMERIC_SPEC:
                return True
        return node.conversion == -1 and self._safe(node.value, seen)


def _markup_args(node: ast.Call) -> list[ast.expr]:
    """The arguments of `node` that rich reads as markup (none with `markup=False`)."""
    name = _call_name(node)
    keywords = {k.arg: k.value for k in node.keywords}
    markup = keywords.get("markup")
    if isinstance(markup, ast.Constant) and markup.value is False:
        return []
    titles = [v for k, v in keywords.items() if k in ("title", "subtitle", "caption")]
    if name in SINKS and isinstance(node.func, ast.Attribute):
        return [*node.args, *titles]
    if name in ("Panel", "Table"):
        return [*(node.args[:1] if name == "Panel" else []), *titles]
    return []


def _is_string(node: ast.expr) -> bool:
    """Whether `node` is a `str` for certain: a name may be a `Text`, and `str(x)` is most
    often a number (`rule(str(path))` is left to the reader)."""
    match node:
        case ast.JoinedStr() | ast.Constant(value=str()):
            return True
        case ast.BinOp(op=ast.Add(), left=left, right=right):
            return _is_string(left) or _is_string(right)
        case ast.IfExp(body=body, orelse=orelse):
            return _is_string(body) or _is_string(orelse)
    return False


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _joins_escaped(node: ast.Call) -> bool:
    """`", ".join(escape(x) for x in xs)`."""
    if _call_name(node) != "join" or len(node.args) != 1:
        return False
    arg = node.args[0]
    if isinstance(arg, (ast.GeneratorExp, ast.ListComp)) and isinstance(arg.elt, ast.Call):
        return _call_name(arg.elt) == "escape"
    return False


def _module_constants(tree: ast.Module) -> set[str]:
    """Module names bound to a string literal, or to a dict or tuple of them."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        literals = value.values if isinstance(value, ast.Dict) else getattr(value, "elts", [value])
        if isinstance(target, ast.Name) and all(_is_literal(v) for v in literals):
            found.add(target.id)
    return found


def _is_literal(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of `scope`, not those of functions defined inside it."""
    for child in ast.iter_child_nodes(scope):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        yield child
        yield from _own_nodes(child)


def _own_calls(scope: ast.AST) -> Iterator[ast.Call]:
    return (node for node in _own_nodes(scope) if isinstance(node, ast.Call))


def _assignments(scope: ast.AST) -> dict[str, list[ast.expr]]:
    """Local name → every value assigned to it in `scope`; a parameter's is unknown, and a
    name bound otherwise (a loop, `with ... as`) is left out, so it is unknown too."""
    found: dict[str, list[ast.expr]] = {}
    for node in _own_nodes(scope):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                found.setdefault(target.id, []).append(node.value)  # type: ignore[attr-defined]
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for arg in [*scope.args.args, *scope.args.kwonlyargs, *scope.args.posonlyargs]:
            found[arg.arg] = [ast.Name(id=f"<parameter {arg.arg}>")]
    return found


def _rich_modules() -> Iterator[object]:
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "from rich" not in source and "import rich" not in source:
            continue
        yield pytest.param(path, id=path.relative_to(PACKAGE).as_posix())


@pytest.mark.parametrize("path", list(_rich_modules()))
def test_no_text_of_unknown_origin_goes_through_markup(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [f"{path.name}:{line}: {code}" for line, code in MarkupCheck(tree).offenders()]
    assert not found, "print these as Text (or escape them):\n" + "\n".join(found)


def test_the_static_check_catches_what_it_should() -> None:
    source = """
NOTE = "plain"
METHODS = {"a": "x", "b": "y"}
def f(console, table, name, n, path, items):
    share = f" ({n / 2:.0%})" if n else ""
    state = "on" if n else "off"
    console.print(f"[red]{NOTE} {METHODS[name]} {n:,} {len(items)} {n - 1}{share} {state}[/red]")
    console.print(f"{', '.join(escape(i) for i in items)} {escape(name)}")
    console.print(f"[red]{name}[/red]", markup=False)
    console.print(f"[bold]>[/bold] {name}")
    console.print(f"[red]{name!r}[/red]")
    console.print("Served: " + name)
    console.rule(f"{path}", style="dim")
    console.print(f"{n}")
    table.add_row(str(n), Text(name), f"{n:.1f} s", f"{name}")
    Panel(f"[b]{name}[/b]")
    Table(title=f"{name}")
    Panel(Text(name), title="Tools")
    table.add_row(str(n), f"{n:.1f} s", name)
"""
    lines = sorted(line for line, _ in MarkupCheck(ast.parse(source)).offenders())
    assert lines == [10, 11, 12, 13, 14, 15, 16, 17]
