"""Engine command lines (golden strings) and `serve --dry-run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_code.serve.catalog import Catalog, ServeError, parse_gpus
from qwen_code.serve.engines import (
    EngineCommand,
    NodeCommand,
    ServeOptions,
    build_command,
    install_error,
    llama_cpp_python,
    missing_program,
)
from qwen_code.serve.plan import PlanRequest, make_plan
from tests.helpers import run_cli

CATALOG = Catalog.load()
HEAD = "10.99.48.128:13345"


def command(
    model: str,
    gpus: str,
    label: str | None = None,
    engine: str | None = None,
    opts: ServeOptions | None = None,
    **kwargs: object,
) -> EngineCommand:
    plan = make_plan(PlanRequest(choice=CATALOG.resolve(model), gpus=parse_gpus(gpus), **kwargs))
    fit = plan.best
    if label:
        fit = next(
            f for f in plan.fits if f.layout.label() == label and engine in (None, f.layout.engine)
        )
    assert fit is not None
    return build_command(plan, fit, opts or ServeOptions())


def lines(cmd: EngineCommand) -> list[str]:
    return [node.shell() for node in cmd.nodes]


VLLM_TOOLS = "--enable-auto-tool-choice --tool-call-parser qwen3_coder"


def test_vllm_480b_fp8_dp8_ep_like_the_recipe() -> None:
    cmd = command("480b:fp8", "8xH200", "DP8 + EP8", context=131_072)
    assert lines(cmd) == [
        "VLLM_USE_DEEP_GEMM=1 vllm serve Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8 "
        "--served-model-name qwen3-coder-480b-a35b-fp8 --host 127.0.0.1 --port 8000 "
        "--tensor-parallel-size 1 --data-parallel-size 8 --enable-expert-parallel "
        f"--max-model-len 131072 --gpu-memory-utilization 0.9 {VLLM_TOOLS}"
    ]
    assert (cmd.served_name, cmd.base_url) == (
        "qwen3-coder-480b-a35b-fp8",
        "http://127.0.0.1:8000/v1",
    )
    assert cmd.notes == ("Needs vllm >= 0.10.0 for this model.",)


def test_vllm_best_plan_on_8xh200() -> None:
    assert lines(command("480b:fp8", "8xH200")) == [
        "VLLM_USE_DEEP_GEMM=1 vllm serve Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8 "
        "--served-model-name qwen3-coder-480b-a35b-fp8 --host 127.0.0.1 --port 8000 "
        "--tensor-parallel-size 8 --enable-expert-parallel --max-model-len 262144 "
        f"--gpu-memory-utilization 0.9 {VLLM_TOOLS}"
    ]


def test_vllm_bf16_on_blackwell_has_no_hopper_env() -> None:
    assert lines(command("480b:bf16", "8xB200", "TP8 + EP8", "vllm", context=32_000)) == [
        "vllm serve Qwen/Qwen3-Coder-480B-A35B-Instruct --served-model-name "
        "qwen3-coder-480b-a35b-bf16 --host 127.0.0.1 --port 8000 --tensor-parallel-size 8 "
        f"--enable-expert-parallel --max-model-len 32000 --gpu-memory-utilization 0.9 {VLLM_TOOLS}"
    ]


def test_vllm_yarn_past_the_native_window_with_fp8_kv() -> None:
    cmd = command(
        "480b:fp8", "8xH200", "TP8 + EP8", "vllm", context=1_000_000, kv_cache_dtype="fp8"
    )
    assert lines(cmd) == [
        "VLLM_USE_DEEP_GEMM=1 VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve "
        "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8 --served-model-name qwen3-coder-480b-a35b-fp8 "
        "--host 127.0.0.1 --port 8000 --tensor-parallel-size 8 --enable-expert-parallel "
        "--max-model-len 1000000 --gpu-memory-utilization 0.9 --kv-cache-dtype fp8 "
        f"{VLLM_TOOLS} --hf-overrides "
        """'{"rope_parameters": {"rope_type": "yarn", "factor": 4.0, """
        """"original_max_position_embeddings": 262144, "rope_theta": 10000000}}'"""
    ]


def test_vllm_concurrency_is_per_dp_rank() -> None:
    cmd = command("30b:fp8", "2xH100", "DP2 + EP2", "vllm", concurrency=16)
    assert "--max-model-len 65536 --gpu-memory-utilization 0.9 --max-num-seqs 8 " in lines(cmd)[0]


def test_vllm_multi_node_data_parallel() -> None:
    cmd = command(
        "30b:fp8", "8xH100", "DP16 + EP16", "vllm", nodes=2, opts=ServeOptions(head_address=HEAD)
    )
    common = (
        "vllm serve Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8 --served-model-name "
        "qwen3-coder-30b-a3b-fp8 --host 127.0.0.1 --port 8000 --tensor-parallel-size 1 "
        "--data-parallel-size 16 --data-parallel-size-local 8 --data-parallel-address "
        "10.99.48.128 --data-parallel-rpc-port 13345"
    )
    tail = (
        f"--enable-expert-parallel --max-model-len 262144 --gpu-memory-utilization 0.9 {VLLM_TOOLS}"
    )
    assert lines(cmd) == [
        f"{common} {tail}",
        f"{common} --headless --data-parallel-start-rank 8 {tail}",
    ]
    assert [n.serves_http for n in cmd.nodes] == [True, False]


def test_vllm_multi_node_tensor_and_pipeline_parallel_over_ray() -> None:
    cmd = command(
        "480b:bf16", "8xH100", "TP8 x PP2", "vllm", nodes=2, opts=ServeOptions(head_address=HEAD)
    )
    head, worker = cmd.nodes
    assert head.before == (("ray", "start", "--head", "--port=13345"),)
    assert (
        "--tensor-parallel-size 8 --pipeline-parallel-size 2 --distributed-executor-backend ray"
        in head.shell()
    )
    assert worker.argv == ("ray", "start", f"--address={HEAD}", "--block")
    assert not worker.serves_http


def test_multi_node_needs_the_head_address() -> None:
    with pytest.raises(ServeError, match="--head-address"):
        command("480b:bf16", "8xH100", nodes=2)


def test_sglang_480b_fp8_tp8_ep2_like_the_cookbook() -> None:
    assert lines(command("480b:fp8", "8xH200", "TP8 + EP2", "sglang")) == [
        "python -m sglang.launch_server --model-path Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8 "
        "--served-model-name qwen3-coder-480b-a35b-fp8 --host 127.0.0.1 --port 8000 --tp 8 "
        "--ep 2 --context-length 262144 --mem-fraction-static 0.9 --tool-call-parser qwen3_coder"
    ]


def test_sglang_yarn_and_fp8_kv() -> None:
    cmd = command(
        "480b:fp8", "8xH200", "TP8 + EP8", "sglang", context=1_000_000, kv_cache_dtype="fp8"
    )
    assert lines(cmd) == [
        "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1 python -m sglang.launch_server --model-path "
        "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8 --served-model-name qwen3-coder-480b-a35b-fp8 "
        "--host 127.0.0.1 --port 8000 --tp 8 --ep 8 --context-length 1000000 "
        "--mem-fraction-static 0.9 --kv-cache-dtype fp8_e4m3 --tool-call-parser qwen3_coder "
        """--json-model-override-args '{"rope_scaling": {"rope_type": "yarn", "factor": 4.0, """
        """"original_max_position_embeddings": 262144}}'"""
    ]


def test_sglang_dp_attention_and_coder_next() -> None:
    dp = command("480b:fp8", "8xH200", "TP8 + DP-attention 8 + EP8", "sglang")
    assert "--tp 8 --ep 8 --dp 8 --enable-dp-attention --context-length 131072" in lines(dp)[0]
    nxt = command("next:fp8", "1xH200", "TP1", "sglang")
    assert lines(nxt) == [
        "python -m sglang.launch_server --model-path Qwen/Qwen3-Coder-Next-FP8 "
        "--served-model-name qwen3-coder-next-fp8 --host 127.0.0.1 --port 8000 --tp 1 "
        "--context-length 262144 --mem-fraction-static 0.9 --tool-call-parser qwen3_coder"
    ]
    assert nxt.notes == ("Needs sglang >= 0.5.8 for this model.",)


def test_sglang_multi_node() -> None:
    cmd = command(
        "480b:fp8", "8xH100", "TP16 + EP16", "sglang", nodes=2, opts=ServeOptions(head_address=HEAD)
    )
    assert [n.shell().split("--tool-call-parser qwen3_coder ")[1] for n in cmd.nodes] == [
        f"--nnodes 2 --node-rank 0 --dist-init-addr {HEAD}",
        f"--nnodes 2 --node-rank 1 --dist-init-addr {HEAD}",
    ]


def test_llama_cpp_gguf_with_offload_fp8_kv_and_template() -> None:
    opts = ServeOptions(
        host="0.0.0.0",
        port=8001,
        api_key="s3cret",
        gguf_file="/models/q.gguf",
        chat_template_file="/t/qwen3coder.jinja",
    )
    cmd = command("30b:ud-q4_k_xl", "1xRTX4090", context=32_768, kv_cache_dtype="fp8", opts=opts)
    assert lines(cmd) == [
        "llama-server --model /models/q.gguf --alias qwen3-coder-30b-a3b-ud-q4_k_xl --host 0.0.0.0 "
        "--port 8001 --ctx-size 32768 --parallel 1 --n-gpu-layers 999 -ot '.ffn_.*_exps.=CPU' "
        "--jinja --flash-attn on --cache-type-k q8_0 --cache-type-v q8_0 --temp 0.7 --top-p 0.8 "
        "--top-k 20 --repeat-penalty 1.05 --chat-template-file /t/qwen3coder.jinja --api-key s3cret"
    ]
    assert cmd.base_url == "http://127.0.0.1:8001/v1"
    assert "--chat-template-file" in cmd.notes[0]


def test_llama_cpp_downloads_by_repo_and_quant_and_uses_next_sampling() -> None:
    cmd = command("next:ud-q4_k_xl", "1xH100", concurrency=4, context=65_536)
    assert lines(cmd) == [
        "llama-server -hf unsloth/Qwen3-Coder-Next-GGUF:UD-Q4_K_XL --alias "
        "qwen3-coder-next-ud-q4_k_xl --host 127.0.0.1 --port 8000 --ctx-size 262144 "
        "--parallel 4 --n-gpu-layers 999 --jinja --flash-attn on --temp 1 --top-p 0.95 --top-k 40"
    ]


def test_llama_cpp_python_fallback() -> None:
    plan = make_plan(PlanRequest(choice=CATALOG.resolve("30b:q4_k_m"), gpus=parse_gpus("1xH100")))
    assert plan.best is not None
    opts = ServeOptions(gguf_file="/m/q.gguf")
    node = build_command(plan, plan.best, opts).nodes[0]
    assert llama_cpp_python(node, plan, plan.best, opts).argv == (
        "python", "-m", "llama_cpp.server", "--model", "/m/q.gguf", "--model_alias",
        "qwen3-coder-30b-a3b-q4_k_m", "--host", "127.0.0.1", "--port", "8000", "--n_ctx",
        "262144", "--n_gpu_layers", "-1",
    )  # fmt: skip
    with pytest.raises(ServeError, match="--gguf FILE"):
        llama_cpp_python(node, plan, plan.best, ServeOptions())


def test_missing_engines_name_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert missing_program(("vllm", "serve")) == "vllm"
    assert missing_program(("llama-server",)) == "llama.cpp"
    assert missing_program(("python", "-m", "sglang.launch_server")) == "sglang"
    assert missing_program(("python", "-m", "json.tool")) is None
    assert str(install_error("vllm")) == (
        "vllm is not installed.\nInstall it with: pip install 'qwen-code[vllm]'"
    )
    assert "pip install 'qwen-code[sglang]'" in str(install_error("sglang"))
    assert "llama-server is on PATH" in str(install_error("llama.cpp"))


def test_multiline_shell() -> None:
    node = NodeCommand(0, ("vllm", "serve", "M", "--tp", "8", "--flag"), {"A": "1"})
    assert node.shell(multiline=True) == "A=1 vllm serve M \\\n    --tp 8 \\\n    --flag"


# --- the CLI ------------------------------------------------------------------------------------


def test_dry_run_prints_the_command_and_install_note(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out = run_cli(
        "serve", "--model", "480b:fp8", "--gpus", "8xH200", "--dry-run", "--context", "128K"
    )
    assert code == 0
    assert out.splitlines()[0] == (
        "Plan: vllm TP8 + EP8: 60.2 GB of weights per GPU, 2,005,284 KV tokens, context "
        "131,072, up to 15 sequences at once."
    )
    assert "  VLLM_USE_DEEP_GEMM=1 vllm serve Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8 \\\n" in out
    assert "Note: vllm is not installed here (pip install 'qwen-code[vllm]')." in out
    assert (
        "Clients: OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_MODEL=qwen3-coder-480b-a35b-fp8"
        in out
    )


def test_dry_run_with_gpus_auto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '0, NVIDIA H200, 143771'\necho '1, NVIDIA H200, 143771'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    code, out = run_cli("serve", "-m", "next:bf16", "--engine", "sglang", "--dry-run")
    assert code == 0
    assert out.startswith("nvidia-smi: 2 GPU(s) (NVIDIA H200) -> planning for 2x H200 141 GB\n")
    assert "--model-path Qwen/Qwen3-Coder-Next \\\n" in out and "--tp 2 \\\n" in out


def test_asking_for_the_fp8_trap_explains_it() -> None:
    with pytest.raises(ServeError) as err:
        run_cli(
            "serve",
            "-m",
            "480b:fp8",
            "--gpus",
            "8xH100",
            "--engine",
            "vllm",
            "--tp",
            "8",
            "--ep",
            "1",
            "--dry-run",
        )
    assert "2560/8 = 320, not a multiple of 128" in str(err.value)
    assert "Without the filters the best is vllm TP8 + EP8." in str(err.value)


def test_too_few_gpus() -> None:
    with pytest.raises(ServeError) as err:
        run_cli("serve", "-m", "480b:fp8", "--gpus", "2xH100", "--dry-run")
    assert "the weights alone need at least 7 GPUs of 80 GB" in str(err.value)


def test_plan_json_and_exit_code() -> None:
    code, out = run_cli("serve", "plan", "-m", "30b:fp8", "--gpus", "1xH100", "--json")
    assert code == 0 and '"kv_tokens_per_replica": 385121' in out
    code, out = run_cli("serve", "plan", "-m", "480b:bf16", "--gpus", "8xH100")
    assert code == 1 and "Nothing fits." in out


def test_cli_serve_imports_nothing_heavy_and_registers_into_the_main_app() -> None:
    probe = (
        "import sys, qwen_code.cli_serve\n"
        "print(sorted(m for m in sys.modules if m.startswith(('qwen_code.serve', 'openai', "
        "'pydantic', 'rich'))))\n"
        "from qwen_code import cli, cli_serve\n"
        "cli_serve.register(cli.app)\n"
        "code = cli.main(['serve', 'plan', '-m', '30b:fp8', '--gpus', '1xH100'])\n"
        "code += cli.main(['serve', '-m', '480b', '--gpus', '2xH100', '--dry-run'])\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.splitlines()[0] == "[]"
    assert "1  vllm    TP1" in done.stdout
    assert "qwen-code: Nothing fits qwen3-coder-480b-a35b-fp8 on 2x H100" in done.stderr
    assert done.returncode == 1
