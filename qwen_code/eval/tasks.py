"""Task files: JSONL (one task a line; blank and `#` lines skipped), YAML (a list, or a
mapping with `tasks:`) or JSON (a list), each task a `Task` or a SWE-bench instance.
Relative `repo` and `hidden_tests` paths are taken from the task file's directory; every
error is an InputError naming the file, the line (or index) and the field."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from qwen_code.errors import InputError
from qwen_code.eval.model import Task
from qwen_code.eval.repos import is_url
from qwen_code.eval.swebench import (
    is_swebench,
    parse_pytest_report,
    swebench_task_fields,
    swebench_verdict,
)

__all__ = ["load_tasks", "parse_pytest_report", "swebench_verdict"]

Entry = tuple[str, Any]
"""(where: "FILE:LINE" or "FILE, index N", the parsed object)."""

_PATH_FIELDS = ("repo", "hidden_tests")


def load_tasks(path: Path, *, repos_dir: Path | None = None) -> list[Task]:
    """The tasks of a task file; `repos_dir` holds the repositories SWE-bench instances
    name (owner__name, owner/name or name; a clone, mirror or bundle)."""
    path = Path(path).expanduser().absolute()
    tasks: list[Task] = []
    first_seen: dict[str, str] = {}
    for where, obj in _entries(path):
        task = _task(obj, where, path.parent, repos_dir)
        if task.id in first_seen:
            raise InputError(
                f"{where}: duplicate task id {task.id!r} (first at {first_seen[task.id]})"
            )
        first_seen[task.id] = where
        tasks.append(task)
    if not tasks:
        raise InputError(f"{path}: no tasks in the file")
    return tasks


def _entries(path: Path) -> list[Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"the task file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the task file {path}: {exc}") from None
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_entries(path, text)
    if suffix in (".yaml", ".yml"):
        return _yaml_entries(path, text)
    if suffix == ".json":
        return _json_entries(path, text)
    raise InputError(
        f"{path}: unknown task file type {suffix or '(no suffix)'}",
        hint="Task files are .jsonl, .yaml/.yml or .json.",
    )


def _jsonl_entries(path: Path, text: str) -> list[Entry]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entries.append((f"{path}:{number}", json.loads(stripped)))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}:{number}: not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
    return entries


def _json_entries(path: Path, text: str) -> list[Entry]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    items = _task_list(path, data)
    return [(f"{path}, index {i}", item) for i, item in enumerate(items)]


def _yaml_entries(path: Path, text: str) -> list[Entry]:
    """YAML tasks, each named by the line it starts on."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}{line}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    items = _task_list(path, data)
    if isinstance(node, yaml.MappingNode):
        node = next(v for k, v in node.value if getattr(k, "value", None) == "tasks")
    lines = (
        [item.start_mark.line + 1 for item in node.value]
        if isinstance(node, yaml.SequenceNode)
        else []
    )
    if len(lines) != len(items):  # not expected; fall back to indexes
        return [(f"{path}, index {i}", item) for i, item in enumerate(items)]
    return [(f"{path}:{line}", item) for line, item in zip(lines, items, strict=True)]


def _task_list(path: Path, data: Any) -> list[Any]:
    if isinstance(data, dict) and "tasks" in data:
        data = data["tasks"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of tasks (or a mapping with `tasks:`)")
    return data


def _task(obj: Any, where: str, base_dir: Path, repos_dir: Path | None) -> Task:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: a task must be an object (a mapping), not {_kind(obj)}")
    if is_swebench(obj):
        data = swebench_task_fields(obj, where, repos_dir)
    else:
        data = _with_absolute_paths(obj, where, base_dir)
    try:
        return Task.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{where}: {readable_errors(exc)}") from None


def _with_absolute_paths(obj: dict[str, Any], where: str, base_dir: Path) -> dict[str, Any]:
    data = dict(obj)
    for key in _PATH_FIELDS:
        value = data.get(key)
        if isinstance(value, str) and not value.strip():
            raise InputError(f"{where}: field '{key}': empty")
        if not isinstance(value, str) or (key == "repo" and is_url(value)):
            continue
        path = Path(os.path.normpath(base_dir / Path(value).expanduser()))
        if not path.exists():
            raise InputError(f"{where}: field '{key}': {path} does not exist")
        if key == "hidden_tests" and not path.is_dir():
            raise InputError(f"{where}: field '{key}': {path} is not a directory")
        data[key] = str(path)
    return data


def readable_errors(exc: ValidationError) -> str:
    """pydantic's errors as "field 'x': problem; field 'y': problem"."""
    by_field: dict[str, list[dict[str, Any]]] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        by_field.setdefault(str(loc[0]) if loc else "", []).append(dict(error))
    parts = []
    for name, errors in by_field.items():
        label = f"field '{name}'" if name else "task"
        error = errors[0]
        if error["type"] == "missing":
            problem = "missing (required)"
        elif error["type"] == "extra_forbidden":
            problem = "unknown field"
        elif len(errors) > 1:  # a union (network): none of its forms fits
            problem = f"invalid value {_short(error['input'])}"
        else:
            where = "".join(f"[{p}]" if isinstance(p, int) else "" for p in error["loc"][1:])
            problem = f"{error['msg']}{' at ' + where if where else ''}"
        parts.append(f"{label}: {problem}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
