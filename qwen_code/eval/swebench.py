"""SWE-bench instances as tasks, and SWE-bench's verdict from pytest's `-rA` summary.

An instance (`instance_id`, `repo` "owner/name", `base_commit`, `problem_statement`,
`test_patch`, `FAIL_TO_PASS`, `PASS_TO_PASS`) is read as is; its repository comes from a
local directory of mirrors, since instances name GitHub repositories. The gold `patch` and
SWE-bench's other fields are ignored; `setup`, `test`, `timeout`, `test_timeout`,
`max_turns` and `network` may be added to an instance and are honoured.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from qwen_code.errors import InputError
from qwen_code.eval.model import SweBenchCheck

REQUIRED = (
    "instance_id",
    "repo",
    "base_commit",
    "problem_statement",
    "test_patch",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
)
HONOURED = ("setup", "test", "timeout", "test_timeout", "max_turns", "network")
PYTEST = "python -m pytest -rA -p no:cacheprovider"
PROMPT = """\
Resolve the issue below. The repository is in the current directory, checked out at the \
commit where the issue was reported.

<issue>
{problem}
</issue>

Fix it by editing the non-test source files; do not add or change tests."""

PASSING = ("PASSED", "XFAIL")
STATUSES = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS")
_SUMMARY = re.compile(r"^=+ short test summary info =+$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def is_swebench(obj: dict[str, Any]) -> bool:
    return "instance_id" in obj


def swebench_task_fields(obj: dict[str, Any], where: str, repos_dir: Path | None) -> dict[str, Any]:
    """The `Task` fields of a SWE-bench instance (validated by the caller)."""
    for key in REQUIRED:
        if key not in obj:
            raise InputError(f"{where}: field '{key}': missing (a SWE-bench instance needs it)")
    for key in ("instance_id", "repo", "base_commit", "problem_statement", "test_patch"):
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise InputError(f"{where}: field '{key}': expected a non-empty string")
    fail_to_pass = _test_ids(obj, "FAIL_TO_PASS", where)
    pass_to_pass = _test_ids(obj, "PASS_TO_PASS", where)
    if not fail_to_pass:
        raise InputError(f"{where}: field 'FAIL_TO_PASS': empty, so nothing shows a fix")
    ids = list(dict.fromkeys(fail_to_pass + pass_to_pass))
    data: dict[str, Any] = {
        "id": obj["instance_id"],
        "repo": str(find_repo(obj["repo"], repos_dir, where)),
        "commit": obj["base_commit"],
        "prompt": PROMPT.format(problem=obj["problem_statement"].strip()),
        "test": f"{PYTEST} {shlex.join(ids)}",
        "test_patch": obj["test_patch"],
        "swebench": SweBenchCheck(fail_to_pass=fail_to_pass, pass_to_pass=pass_to_pass),
    }
    data.update({k: obj[k] for k in HONOURED if obj.get(k) is not None})
    return data


def _test_ids(obj: dict[str, Any], key: str, where: str) -> list[str]:
    """A list of test ids, given as a list or as a JSON-encoded list (SWE-bench's own)."""
    value = obj[key]
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            raise InputError(
                f"{where}: field '{key}': not a JSON list of test ids ({value[:60]!r})"
            ) from None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InputError(f"{where}: field '{key}': expected a list of test ids")
    return list(dict.fromkeys(value))


def find_repo(name: str, repos_dir: Path | None, where: str) -> Path:
    """`owner/name` in the mirrors directory: DIR/owner__name, DIR/owner/name or DIR/name,
    each also with `.git` or `.bundle`."""
    if repos_dir is None:
        raise InputError(
            f"{where}: SWE-bench instance of {name}: its repository must come from a local "
            "directory of mirrors",
            hint="Give the repositories directory (--repos DIR), holding owner__name, "
            "owner/name or name (a clone, a mirror or a .bundle).",
        )
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        raise InputError(f"{where}: field 'repo': expected 'owner/name', not {name!r}")
    owner, repo = name.split("/")
    root = Path(repos_dir).expanduser().absolute()
    bases = [root / f"{owner}__{repo}", root / owner / repo, root / repo]
    for base in bases:
        for suffix in ("", ".git", ".bundle"):
            candidate = base.with_name(base.name + suffix)
            if candidate.exists():
                return candidate
    tried = ", ".join(str(b.relative_to(root)) for b in bases)
    raise InputError(
        f"{where}: repository {name} not found in {root}",
        hint=f"Tried {tried} (each also with .git or .bundle).",
    )


def parse_pytest_report(output: str) -> dict[str, str]:
    """Test id -> PASSED, FAILED, ERROR, XFAIL or XPASS, from the short test summary of
    `pytest -rA` (the last one in `output`; every line when there is none). SKIPPED lines
    name a file and line, not a test, so skipped tests are absent. A test listed twice
    (passed, then errored in teardown) keeps its failure."""
    lines = _ANSI.sub("", output).splitlines()
    starts = [i for i, line in enumerate(lines) if _SUMMARY.match(line.strip())]
    if starts:
        lines = lines[starts[-1] + 1 :]
    report: dict[str, str] = {}
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        if word not in STATUSES or not rest or rest.startswith("["):
            continue
        test_id = _test_id(rest)
        if report.get(test_id) not in ("FAILED", "ERROR"):
            report[test_id] = word
    return report


def _test_id(rest: str) -> str:
    """The id at the start of a summary line: up to the first " - " outside brackets (a
    parametrized id may hold " - " itself)."""
    depth = 0
    for i, char in enumerate(rest):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif depth == 0 and rest.startswith(" - ", i):
            return rest[:i]
    if depth and " - " in rest:  # an unbalanced "[": the first " - " then
        return rest.split(" - ", 1)[0]
    return rest.rstrip()


def swebench_verdict(check: SweBenchCheck, output: str) -> tuple[bool, list[str]]:
    """(solved, the listed tests that did not pass): solved iff every FAIL_TO_PASS and
    PASS_TO_PASS test PASSED (XFAIL counts as passed, as in SWE-bench)."""
    report = parse_pytest_report(output)
    wanted = list(dict.fromkeys([*check.fail_to_pass, *check.pass_to_pass]))
    failed = [t for t in wanted if report.get(t) not in PASSING]
    return bool(wanted) and not failed, failed
