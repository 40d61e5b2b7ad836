"""The engine lifecycle against a stand-in engine (tests/fake_engine.py): start, readiness
with progress, the environment to use it, Ctrl+C stopping the whole process group,
--detach / stop / status, and an engine that crashes while loading."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_code.processes import stop_group
from qwen_code.serve.display import Display, LogFollower, log_tail
from tests.helpers import alive
from tests.test_serve_gguf import LLAMA_TEMPLATE, write_gguf

TESTS = Path(__file__).resolve().parent
ENGINE = TESTS / "fake_engine.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """PATH with `vllm` and `llama-server` shims, and a fake `sglang` package."""
    bin_dir, pkgs = tmp_path / "bin", tmp_path / "pkgs" / "sglang"
    bin_dir.mkdir()
    pkgs.mkdir(parents=True)
    for name in ("vllm", "llama-server"):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ENGINE}" "$@"\n')
        shim.chmod(0o755)
    (pkgs / "__init__.py").write_text("")
    (pkgs / "launch_server.py").write_text(
        f"import runpy, sys\nsys.argv[0] = {str(ENGINE)!r}\n"
        f"runpy.run_path({str(ENGINE)!r}, run_name='__main__')\n"
    )
    result = dict(os.environ)
    result["PATH"] = f"{bin_dir}{os.pathsep}{result['PATH']}"
    result["PYTHONPATH"] = os.pathsep.join([str(pkgs.parent), str(TESTS.parent)])
    result["FAKE_ENGINE_PIDS"] = str(tmp_path / "pids")
    result["FAKE_ENGINE_ARGV"] = str(tmp_path / "argv.json")
    result["FAKE_ENGINE_LOAD_S"] = "0.4"
    return result


class Cli:
    """`python -m qwen_code.cli_serve ...` in a subprocess, its output collected."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qwen_code.cli_serve", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # A shell's background job ignores SIGINT, and the child would inherit that.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output:
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(
                    f"exited {self.proc.returncode} without {text!r}:\n{self.output}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout_s} s:\n{self.output}")
            time.sleep(0.05)

    def finish(self, timeout_s: float = 30) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout_s} s:\n{self.output}") from None
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def started(env: dict[str, str]) -> Iterator[list[Cli]]:
    """The CLIs a test starts; afterwards they are killed, and so is an engine that a failed
    test left running (it has its own process group, which killing the CLI does not reach)."""
    clis: list[Cli] = []
    yield clis
    for cli in clis:
        if cli.proc.poll() is None:
            cli.proc.kill()
            cli.proc.wait()
    recorded = Path(env["FAKE_ENGINE_PIDS"])
    for pid in recorded.read_text().split()[:1] if recorded.exists() else []:
        if alive(int(pid)):
            stop_group(int(pid), grace_s=2)


def serve(env: dict[str, str], started: list[Cli], port: int, *extra: str) -> Cli:
    args = ["serve", "-m", "30b:fp8", "--gpus", "1xH200", "--port", str(port), *extra]
    cli = Cli(env, *args)
    started.append(cli)
    return cli


def wait_file(path: Path, timeout_s: float = 10) -> Path:
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path


def pids(env: dict[str, str]) -> list[int]:
    text = wait_file(Path(env["FAKE_ENGINE_PIDS"])).read_text()
    return [int(p) for p in text.split() if p != "0"]


def test_start_ready_environment_and_ctrl_c_stops_the_group(
    env: dict[str, str], started: list[Cli]
) -> None:
    env.update(FAKE_ENGINE_CHILD="1", FAKE_ENGINE_LOAD_S="1.2")
    port = free_port()
    cli = serve(env, started, port, "--engine", "vllm")
    cli.wait_for("  qwen-code\n")
    out = cli.output
    assert f"Waiting for the engine: polling http://127.0.0.1:{port}/health and " in out
    assert "\nLoading" in out  # the progress line while the weights load
    assert "  | INFO GPU KV cache size: 275,823 tokens  (planned: 943,593 tokens)" in out
    assert f"  export OPENAI_BASE_URL=http://127.0.0.1:{port}/v1\n" in out
    assert "  export OPENAI_MODEL=qwen3-coder-30b-a3b-fp8\n" in out
    assert "--tool-call-parser" in Path(env["FAKE_ENGINE_ARGV"]).read_text()
    engine, child = pids(env)
    assert alive(engine) and alive(child)
    cli.proc.send_signal(signal.SIGINT)
    assert cli.finish() == 0
    assert "Engine stopped." in cli.output
    assert not alive(engine) and not alive(child)


def test_sigterm_also_stops_the_engine_sglang(env: dict[str, str], started: list[Cli]) -> None:
    port = free_port()
    cli = serve(env, started, port, "--engine", "sglang")
    cli.wait_for("Press Ctrl+C")
    argv = wait_file(Path(env["FAKE_ENGINE_ARGV"])).read_text()
    assert '"--tp", "1"' in argv and '"--tool-call-parser", "qwen3_coder"' in argv
    (engine,) = pids(env)
    cli.proc.send_signal(signal.SIGTERM)
    assert cli.finish() == 0
    assert not alive(engine)


def test_crash_while_loading_shows_the_log_tail(env: dict[str, str], started: list[Cli]) -> None:
    env["FAKE_ENGINE_CRASH"] = "3"
    cli = serve(env, started, free_port())
    assert cli.finish() == 1
    assert "qwen-code: vllm exited with code 3 while loading" in cli.output
    assert "Last lines of " in cli.output
    assert "  ERROR torch.OutOfMemoryError: CUDA out of memory (fake)" in cli.output


def test_not_ready_before_the_deadline(env: dict[str, str], started: list[Cli]) -> None:
    env["FAKE_ENGINE_LOAD_S"] = "30"
    cli = serve(env, started, free_port(), "--ready-timeout", "1")
    assert cli.finish() == 1
    assert "vllm was not ready after 1 s (/health: 503)." in cli.output
    assert not alive(pids(env)[0])


def test_detach_status_and_stop(env: dict[str, str], started: list[Cli]) -> None:
    port = free_port()
    cli = serve(env, started, port, "--detach")
    assert cli.finish() == 0
    assert f"Detached. Stop it with: qwen-code serve stop --port {port}" in cli.output
    (engine,) = pids(env)
    assert alive(engine)
    status = Cli(env, "serve", "status")
    assert status.finish() == 0
    assert f"port {port}: vllm qwen3-coder-30b-a3b-fp8, pid {engine}, ready, up " in status.output
    stop = Cli(env, "serve", "stop", "--port", str(port))
    assert stop.finish() == 0
    assert f"vllm qwen3-coder-30b-a3b-fp8 on port {port} (pid {engine}) stopped." in stop.output
    assert not alive(engine)
    again = Cli(env, "serve", "status")
    assert again.finish() == 0 and "No detached engine is running." in again.output


def test_missing_engine_gives_the_install_command(env: dict[str, str], started: list[Cli]) -> None:
    env["PATH"] = "/usr/bin:/bin"
    cli = serve(env, started, free_port(), "--engine", "vllm")
    assert cli.finish() == 1
    assert (
        "qwen-code: vllm is not installed.\nInstall it with: pip install 'qwen-code[vllm]'"
        in cli.output
    )


def test_port_in_use(env: dict[str, str], started: list[Cli]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        cli = serve(env, started, sock.getsockname()[1])
        assert cli.finish() == 1
    assert "is already in use" in cli.output


def test_llama_cpp_warns_about_a_template_without_tool_calls(
    env: dict[str, str], started: list[Cli]
) -> None:
    env["FAKE_ENGINE_TEMPLATE"] = "{{ messages }} <function=...>"
    args = ["serve", "-m", "30b:q4_k_m", "--gpus", "1xH100", "--port", str(free_port())]
    cli = Cli(env, *args)
    started.append(cli)
    cli.wait_for("Press Ctrl+C")
    assert "Warning: the chat template has no <tool_call> wrapper." in cli.output
    assert '"--jinja"' in Path(env["FAKE_ENGINE_ARGV"]).read_text()
    cli.proc.send_signal(signal.SIGINT)
    assert cli.finish() == 0


def test_worker_node_runs_without_serving(env: dict[str, str], started: list[Cli]) -> None:
    args = ["--engine", "vllm", "--dp", "16", "--nodes", "2", "--node-rank", "1"]
    cli = serve(
        env, started, free_port(), "--gpus", "8xH100", *args, "--head-address", "127.0.0.1:1"
    )
    cli.wait_for("Node 1 is running as a worker")
    assert '"--headless"' in wait_file(Path(env["FAKE_ENGINE_ARGV"])).read_text()
    cli.proc.send_signal(signal.SIGINT)
    assert cli.finish() == 0


# --- in-process pieces ------------------------------------------------------------------------


def test_stop_group_kills_an_engine_that_ignores_sigterm(env: dict[str, str]) -> None:
    env.update(FAKE_ENGINE_IGNORE_TERM="1", FAKE_ENGINE_CHILD="1")
    proc = subprocess.Popen(
        [sys.executable, str(ENGINE), "--port", str(free_port())],
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_file(Path(env["FAKE_ENGINE_PIDS"]))
    start = time.monotonic()
    assert stop_group(proc.pid, grace_s=0.3)
    assert time.monotonic() - start < 5
    proc.wait(timeout=5)
    assert not any(alive(p) for p in pids(env))


def test_display_redraws_the_status_line_on_a_terminal() -> None:
    out = io.StringIO()
    display = Display(out, tty=True)
    display.status("Loading 25%")
    display.line("  | ready")
    assert out.getvalue() == "\rLoading 25%\x1b[K\r\x1b[K  | ready\n"
    plain = io.StringIO()
    quiet = Display(plain, tty=False, every_s=60)
    quiet.status("Loading 1")
    quiet.status("Loading 2")
    assert plain.getvalue() == "Loading 1\n"


def test_log_follower_summarises(tmp_path: Path) -> None:
    out = io.StringIO()
    follower = LogFollower(tmp_path / "log", Display(out, tty=False), planned_kv_tokens=1000)
    for line in (
        "DEBUG noise about loading",
        "Loading safetensors checkpoint shards:  50% | 2/4",
        "INFO GPU KV cache size: 1,234 tokens",
        "plain line",
        "WARNING something",
    ):
        follower.handle_line(line)
    assert out.getvalue() == (
        "  | INFO GPU KV cache size: 1,234 tokens  (planned: 1,000 tokens)\n  | WARNING something\n"
    )
    assert follower.percent == 50
    assert follower.progress_text(12.3) == "Loading 50%, 12 s: WARNING something"


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)) + "bar 10%\rbar 20%\n")
    tail = log_tail(log, lines=3)
    assert tail == "  line 29\n  bar 10%\n  bar 20%"
    assert log_tail(tmp_path / "missing") == "  (no log)"


# --- the CPU, a local GGUF file, llama-cpp-python ---------------------------------------------


def test_cpu_plan_with_a_gguf_file_summarises_the_tensor_lines(
    env: dict[str, str], started: list[Cli], tmp_path: Path
) -> None:
    env.update(FAKE_ENGINE_TENSORS="300", QWEN_CODE_LLAMA_SERVER="")
    env["FAKE_ENGINE_TEMPLATE"] = LLAMA_TEMPLATE  # /props: the file's, which takes no tools
    model = write_gguf(tmp_path / "tiny.gguf")
    args = ["serve", "--model", str(model), "--gpus", "cpu", "--threads", "3", "--ram", "4"]
    cli = Cli(env, *args, "--port", str(free_port()))
    started.append(cli)
    cli.wait_for("Press Ctrl+C")
    out = cli.output
    assert "llama-server: " in out and "/bin/llama-server (on PATH)\n" in out
    assert "  | loading tensors: 300 (one line each in the log)\n" in out
    assert "create_tensor" not in out
    assert "Warning: this server's chat template takes no tools: the agent will not" in out
    assert "<tool_call> wrapper" not in out  # not a Qwen model: that warning is not for it
    argv = json.loads(Path(env["FAKE_ENGINE_ARGV"]).read_text())
    assert argv[argv.index("--n-gpu-layers") + 1] == "0"
    assert argv[argv.index("--threads") + 1] == "3"
    assert argv[argv.index("--alias") + 1] == "tiny" and "--temp" not in argv
    cli.proc.send_signal(signal.SIGINT)
    assert cli.finish() == 0


def test_llama_cpp_python_is_ready_by_v1_models(
    env: dict[str, str], started: list[Cli], tmp_path: Path
) -> None:
    """Its server has no /health (404): readiness must not wait for one."""
    package = tmp_path / "pkgs" / "llama_cpp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "server.py").write_text(
        f"import runpy, sys\nsys.argv[0] = {str(ENGINE)!r}\n"
        f"runpy.run_path({str(ENGINE)!r}, run_name='__main__')\n"
    )
    env.update(FAKE_ENGINE_NO_HEALTH="1", QWEN_CODE_LLAMA_SERVER="none")
    model = write_gguf(tmp_path / "tiny.gguf")
    port = free_port()
    args = ["serve", "--model", str(model), "--gpus", "cpu", "--ready-timeout", "60"]
    cli = Cli(env, *args, "--port", str(port))
    started.append(cli)
    cli.wait_for("Press Ctrl+C", timeout_s=15)
    out = cli.output
    assert "llama-server: not found; llama-cpp-python's server" in out
    assert "Using llama-cpp-python's server:\n  " in out and "--n_gpu_layers 0" in out
    models = f"http://127.0.0.1:{port}/v1/models"
    assert f"/health answers 404 (this engine has none): {models} decides\n" in out
    assert "Ready after " in out
    argv = json.loads(Path(env["FAKE_ENGINE_ARGV"]).read_text())
    assert argv[argv.index("--n_ctx") + 1] == "2048" and "--n_threads" in argv
    cli.proc.send_signal(signal.SIGINT)
    assert cli.finish() == 0
