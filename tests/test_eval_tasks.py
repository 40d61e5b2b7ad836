"""Task files for `qwen-code eval` (qwen_code/eval/tasks.py, swebench.py): JSONL, YAML and
JSON; errors that name the file, line and field; SWE-bench instances; pytest's -rA summary."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_code.errors import InputError
from qwen_code.eval.model import SweBenchCheck
from qwen_code.eval.tasks import load_tasks, parse_pytest_report, swebench_verdict


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def task(id: str = "t1", **extra: object) -> dict[str, object]:
    return {"id": id, "repo": "repo", "prompt": "fix it", "test": "pytest -q", **extra}


def jsonl(path: Path, *lines: object) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


@pytest.fixture
def tasks_dir(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    tree(root, {"repo/a.py": "", "hidden/tests/test_a.py": ""})
    return root


def test_jsonl_skips_blank_and_comment_lines_and_resolves_paths(tasks_dir: Path) -> None:
    path = jsonl(
        tasks_dir / "tasks.jsonl",
        "# a comment",
        task("one", hidden_tests="hidden", timeout=60, network=["pypi.org"]),
        "",
        task("two", repo="https://example.com/x.git", commit="abc", max_turns=5),
        task("three", repo=str(tasks_dir / "repo")),
    )
    one, two, three = load_tasks(path)
    assert one.repo == str(tasks_dir / "repo") == three.repo
    assert one.hidden_tests == str(tasks_dir / "hidden")
    assert (one.timeout, one.network, one.commit) == (60.0, ["pypi.org"], None)
    assert (two.repo, two.commit, two.max_turns) == ("https://example.com/x.git", "abc", 5)


def test_yaml_list_or_mapping_and_json_list(tasks_dir: Path) -> None:
    (tasks_dir / "a.yaml").write_text(
        "- id: one\n  repo: repo\n  prompt: p\n  test: t\n- id: two\n  repo: ./repo\n"
        "  prompt: |\n    multi\n    line\n  test: t\n"
    )
    (tasks_dir / "b.yml").write_text("tasks:\n  - {id: one, repo: repo, prompt: p, test: t}\n")
    (tasks_dir / "c.json").write_text(json.dumps([task("one"), task("two")]))
    one, two = load_tasks(tasks_dir / "a.yaml")
    assert two.prompt == "multi\nline\n" and two.repo == one.repo == str(tasks_dir / "repo")
    assert [t.id for t in load_tasks(tasks_dir / "b.yml")] == ["one"]
    assert [t.id for t in load_tasks(tasks_dir / "c.json")] == ["one", "two"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([task("a"), '{"id": "b", "repo": '], r"tasks.jsonl:2: not valid JSON: Expecting value"),
        ([task("a"), "", {"id": "b", "repo": "repo", "test": "t"}], r":3: field 'prompt': missing"),
        ([task("a"), task("b"), task("a")], r":3: duplicate task id 'a' \(first at .*:1\)"),
        ([task("a", tset="typo")], r":1: field 'tset': unknown field"),
        ([task("a", timeout="soon")], r":1: field 'timeout': Input should be a valid number"),
        ([task("a", network="some")], r":1: field 'network': invalid value 'some'"),
        ([task("a", repo=" ")], r":1: field 'repo': empty"),
        ([task("a", repo="missing")], r":1: field 'repo': .*missing does not exist"),
        ([task("a", hidden_tests="repo/a.py")], r"field 'hidden_tests': .* is not a directory"),
        (["[1, 2]"], r":1: a task must be an object \(a mapping\), not a list"),
        (["# only a comment"], r"no tasks in the file"),
    ],
)
def test_malformed_jsonl(tasks_dir: Path, lines: list[object], message: str) -> None:
    path = jsonl(tasks_dir / "tasks.jsonl", *lines)
    with pytest.raises(InputError, match=message) as caught:
        load_tasks(path)
    assert caught.value.message.startswith(str(path))
    assert "Traceback" not in str(caught.value)


def test_yaml_errors_name_the_task_line(tasks_dir: Path) -> None:
    path = tasks_dir / "t.yaml"
    path.write_text(
        "tasks:\n- id: a\n  repo: repo\n  prompt: p\n  test: t\n- id: b\n  repo: repo\n"
    )
    with pytest.raises(
        InputError, match=r"t.yaml:6: field 'prompt': missing \(required\); field 'test'"
    ):
        load_tasks(path)
    path.write_text("- id: a\n  prompt: [unclosed\n")
    with pytest.raises(InputError, match=r"t.yaml:3: not valid YAML"):
        load_tasks(path)
    path.write_text("tasks:\n")
    with pytest.raises(InputError, match="no tasks in the file"):
        load_tasks(path)
    path.write_text("just a string\n")
    with pytest.raises(InputError, match="expected a list of tasks"):
        load_tasks(path)


def test_json_errors_name_the_index_or_line(tasks_dir: Path) -> None:
    path = tasks_dir / "t.json"
    path.write_text(json.dumps([task("a"), task("b", max_turns="x")]))
    with pytest.raises(InputError, match=r"t.json, index 1: field 'max_turns'"):
        load_tasks(path)
    path.write_text('[\n  {"id": "a",}\n]')
    with pytest.raises(InputError, match=r"t.json:2: not valid JSON"):
        load_tasks(path)
    (tasks_dir / "t.txt").write_text("")
    with pytest.raises(InputError, match=r"unknown task file type \.txt"):
        load_tasks(tasks_dir / "t.txt")
    with pytest.raises(InputError, match=r"the task file .*none\.json does not exist"):
        load_tasks(tasks_dir / "none.json")


F2P = ["tests/test_calc.py::test_add", "tests/test_calc.py::test_p[a b]"]
P2P = ["tests/test_calc.py::test_old", "tests/test_calc.py::test_add"]


def instance(**extra: object) -> dict[str, object]:
    return {
        "instance_id": "acme__calc-42",
        "repo": "acme/calc",
        "base_commit": "0123456789abcdef",
        "problem_statement": "add() subtracts.\n",
        "test_patch": "diff --git a/x b/x\n",
        "patch": "the gold fix: never shown",
        "FAIL_TO_PASS": json.dumps(F2P),
        "PASS_TO_PASS": P2P,
        "hints_text": "",
        "version": "1.0",
        "environment_setup_commit": "fedcba",
        "created_at": "2020-01-01",
        **extra,
    }


@pytest.mark.parametrize("layout", ["acme__calc", "acme/calc", "calc.git", "acme__calc.bundle"])
def test_swebench_instance_from_a_repos_dir(tmp_path: Path, layout: str) -> None:
    repos = tmp_path / "mirrors"
    (repos / layout).mkdir(parents=True)
    path = jsonl(tmp_path / "swe.jsonl", instance(), instance(instance_id="b", timeout=30))
    first, second = load_tasks(path, repos_dir=repos)
    assert first.id == "acme__calc-42"
    assert first.repo == str(repos / layout)
    assert first.commit == "0123456789abcdef"
    assert "add() subtracts." in first.prompt and "gold" not in first.prompt
    assert first.test_patch == "diff --git a/x b/x\n"
    assert first.swebench == SweBenchCheck(fail_to_pass=F2P, pass_to_pass=P2P)
    argv = shlex.split(first.test)
    assert argv[:6] == ["python", "-m", "pytest", "-rA", "-p", "no:cacheprovider"]
    assert argv[6:] == [*F2P, "tests/test_calc.py::test_old"]  # deduplicated
    assert second.timeout == 30


def test_swebench_instance_extras_and_errors(tmp_path: Path) -> None:
    repos = tmp_path / "mirrors"
    (repos / "acme__calc").mkdir(parents=True)
    path = jsonl(tmp_path / "swe.jsonl", instance(test="./runtests.py", setup="make"))
    (loaded,) = load_tasks(path, repos_dir=repos)
    assert (loaded.test, loaded.setup) == ("./runtests.py", "make")
    with pytest.raises(InputError, match=r"swe.jsonl:1: SWE-bench instance of acme/calc") as e:
        load_tasks(path)
    assert "--repos" in str(e.value)
    jsonl(path, instance(repo="other/thing"))
    with pytest.raises(InputError, match="repository other/thing not found in"):
        load_tasks(path, repos_dir=repos)
    jsonl(path, instance(FAIL_TO_PASS="[not json"))
    with pytest.raises(InputError, match=r":1: field 'FAIL_TO_PASS': not a JSON list"):
        load_tasks(path, repos_dir=repos)
    jsonl(path, {k: v for k, v in instance().items() if k != "test_patch"})
    with pytest.raises(InputError, match=r":1: field 'test_patch': missing"):
        load_tasks(path, repos_dir=repos)
    jsonl(path, instance(FAIL_TO_PASS="[]"))
    with pytest.raises(InputError, match="'FAIL_TO_PASS': empty"):
        load_tasks(path, repos_dir=repos)


TESTS = """\
import pytest

def test_ok():
    pass

def test_bad():
    assert 1 == 2

@pytest.mark.parametrize("x", ["a - b", "c d", "e]f"])
def test_p(x):
    assert x != "c d"

@pytest.mark.xfail(reason="known")
def test_xf():
    assert 0

@pytest.mark.xfail(reason="why")
def test_xp():
    pass

@pytest.mark.skip(reason="skipped")
def test_sk():
    pass

@pytest.fixture
def boom():
    raise RuntimeError("x - y")

def test_err(boom):
    pass
"""


@pytest.fixture(scope="module")
def pytest_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("pyt")
    tree(root, {"pytest.ini": "[pytest]\n", "tests/test_a.py": TESTS})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "tests/test_a.py"],
        cwd=root,
        env={**env, "COLUMNS": "60", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return proc.stdout


def test_parse_pytest_report_on_real_output(pytest_output: str) -> None:
    report = parse_pytest_report(pytest_output)
    assert report == {
        "tests/test_a.py::test_ok": "PASSED",
        "tests/test_a.py::test_bad": "FAILED",
        "tests/test_a.py::test_p[a - b]": "PASSED",
        "tests/test_a.py::test_p[c d]": "FAILED",
        "tests/test_a.py::test_p[e]f]": "PASSED",
        "tests/test_a.py::test_xf": "XFAIL",
        "tests/test_a.py::test_xp": "XPASS",
        "tests/test_a.py::test_err": "ERROR",
    }


def test_swebench_verdict(pytest_output: str) -> None:
    ok = SweBenchCheck(
        fail_to_pass=["tests/test_a.py::test_ok", "tests/test_a.py::test_p[a - b]"],
        pass_to_pass=["tests/test_a.py::test_xf", "tests/test_a.py::test_p[e]f]"],
    )
    assert swebench_verdict(ok, pytest_output) == (True, [])
    bad = SweBenchCheck(
        fail_to_pass=["tests/test_a.py::test_ok", "tests/test_a.py::test_p[c d]"],
        pass_to_pass=[
            "tests/test_a.py::test_err",
            "tests/test_a.py::test_sk",
            "tests/test_a.py::test_xp",
            "tests/test_a.py::test_gone",
        ],
    )
    solved, failed = swebench_verdict(bad, pytest_output)
    assert not solved
    assert failed == [
        "tests/test_a.py::test_p[c d]",
        "tests/test_a.py::test_err",
        "tests/test_a.py::test_sk",
        "tests/test_a.py::test_xp",
        "tests/test_a.py::test_gone",
    ]


def test_report_keeps_a_teardown_error_and_ignores_colour() -> None:
    output = (
        "PASSED t.py::early\n"  # before the summary: not counted
        "==== short test summary info ====\n"
        "\x1b[32mPASSED\x1b[0m t.py::a\n"
        "ERROR t.py::a - RuntimeError: teardown\n"
        "SKIPPED [1] t.py:3: why\n"
        "==== 1 passed, 1 error in 0.1s ====\n"
    )
    assert parse_pytest_report(output) == {"t.py::a": "ERROR"}
    assert parse_pytest_report("PASSED t.py::x\nFAILED t.py::y - boom\n") == {
        "t.py::x": "PASSED",
        "t.py::y": "FAILED",
    }
