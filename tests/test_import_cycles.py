"""No import cycles: between modules, and between the core packages.

Imports inside functions count (they only hide a cycle, they do not remove it); imports
under `if TYPE_CHECKING:` do not (they never run). The core packages keep one direction:
llm < config < sandbox < hooks < tools < mcp < agent < subagents < session, and nothing
below imports what is above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qwen_code"

CORE_ORDER = ("llm", "config", "sandbox", "hooks", "tools", "mcp", "agent", "subagents", "session")
"""The core layers, lowest first. `config` stands for the settings modules at the top of
the package (config, settings_*, trust, credentials, memory, prompts)."""
CONFIG_MODULES = {
    "config",
    "settings_model",
    "settings_files",
    "trust",
    "credentials",
    "memory",
    "prompts",
    "skills",
    "front_matter",
    "tool_names",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every qwen_code module `tree` imports, at any depth, except TYPE_CHECKING blocks."""
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("qwen_code"))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            if base.startswith("qwen_code"):
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        raw = _imports(tree, name, path.name == "__init__.py")
        # `from pkg import name` names a module only when pkg/name.py exists.
        graph[name] = {m for m in raw if m in paths and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (its nodes in order), or None."""
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        trail.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*trail[trail.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        trail.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    if parts[1] in CONFIG_MODULES:
        return "config"
    return parts[1] if parts[1] in CORE_ORDER else None


def test_find_cycle_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_import_cycle() -> None:
    graph = import_graph()
    # A package's __init__ importing its own modules is not a cycle worth failing on
    # only when no module imports the package back; count it like any other edge.
    assert find_cycle(graph) is None


def test_core_packages_point_one_way() -> None:
    """llm < config < ... < subagents < session: an import from a lower layer to a higher
    one is a cycle waiting to happen."""
    rank = {name: index for index, name in enumerate(CORE_ORDER)}
    upward = []
    for module, targets in import_graph().items():
        source = layer(module)
        if source is None:
            continue
        for target in targets:
            into = layer(target)
            if into is not None and rank[into] > rank[source]:
                upward.append(f"{module} ({source}) imports {target} ({into})")
    assert sorted(upward) == []
