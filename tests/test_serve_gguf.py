"""Local GGUF files: metadata read from real files written by the `gguf` package's own
GGUFWriter (checked against its GGUFReader), planned from their dimensions, served under
their stem, and a chat template that takes no tools said plainly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from qwen_code.serve.catalog import Catalog, ServeError
from qwen_code.serve.gguf_file import file_choice, read_gguf
from tests.helpers import run_cli

LLAMA_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}{% endfor %}"
QWEN_TEMPLATE = "{% if tools %}<tools>{{ tools | tojson }}</tools>{% endif %} <tool_call> ..."
CPU = ("--gpus", "cpu", "--ram", "8", "--threads", "2")


def write_gguf(
    path: Path,
    *,
    arch: str = "llama",
    name: str = "Tiny Llama",
    template: str | None = LLAMA_TEMPLATE,
    context: int = 2048,
    experts: int = 0,
    vocab: int = 1000,
) -> Path:
    """A small but real GGUF file: the keys llama.cpp reads, a vocabulary long enough to be
    skipped rather than read, and a few F32 tensors (4 layers of 64, 4 heads, 2 KV heads)."""
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_block_count(4)
    writer.add_context_length(context)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    if template is not None:
        writer.add_chat_template(template)
    writer.add_token_list([f"tok{i}" for i in range(vocab)])
    if experts:
        writer.add_expert_count(experts)
        writer.add_expert_used_count(2)
        writer.add_expert_feed_forward_length(32)
        writer.add_tensor("blk.0.ffn_up_exps.weight", np.zeros((experts, 32, 64), np.float32))
    writer.add_tensor("token_embd.weight", np.zeros((vocab, 64), np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), np.float32))
    writer.add_tensor("output.weight", np.zeros((vocab, 64), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_metadata_matches_the_gguf_packages_own_reader(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny-llama.Q8.gguf")
    info = read_gguf(path)
    fields = gguf.GGUFReader(str(path)).fields
    for key in (
        "general.architecture",
        "general.name",
        "llama.block_count",
        "llama.context_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "tokenizer.chat_template",
    ):
        assert info.metadata[key] == fields[key].contents(), key
    assert info.metadata["tokenizer.ggml.tokens"] is None  # 1,000 strings: skipped
    assert (info.architecture, info.name, info.layers) == ("llama", "Tiny Llama", 4)
    assert (info.attention_heads, info.kv_heads, info.head_dim) == (4, 2, 16)
    assert (info.embedding_length, info.context_length, info.quant) == (64, 2048, "F32")
    assert info.file_size == path.stat().st_size
    assert info.bytes_by_part == {"experts": 0, "dense": 64 * 64 * 4, "embeddings": 2 * 256_000}
    assert not info.template_takes_tools
    assert info.describe().endswith("; chat template without tools")


def test_a_non_qwen_file_is_planned_from_its_own_dimensions(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny-llama.gguf", context=32_768)
    code, out = run_cli("serve", "--model", str(path), *CPU, "--dry-run")
    assert code == 0
    assert f"GGUF {path}: llama, 4 layers, 4 heads / 2 KV heads, context 32,768, F32" in out
    assert "Plan: llama.cpp all layers on the CPU (2 threads): 0.0 GB of weights" in out
    assert "context 32,768" in out  # the file's own window, not the catalog's 131,072
    command = out.split("Command:\n", 1)[1]
    assert f"llama-server --model {path} \\\n    --alias tiny-llama \\\n" in command
    assert "--ctx-size 32768" in command and "--n-gpu-layers 0" in command
    assert "--threads 2" in command and "--jinja" in command
    assert "--temp" not in command and "-ot" not in command  # no Qwen sampling or offload
    assert (
        "Note: this model's chat template takes no tools: the agent will not be able to call "
        "tools" in out
    )
    assert "OPENAI_MODEL=tiny-llama" in out


def test_gguf_option_and_a_qwen_file_on_a_gpu(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf",
        arch="qwen3moe",
        name="Qwen3-Coder-30B-A3B-Instruct",
        template=QWEN_TEMPLATE,
        context=262_144,
        experts=8,
    )
    code, out = run_cli("serve", "--gguf", str(path), "--gpus", "1xH100", "--dry-run")
    assert code == 0
    assert "--temp 0.7" in out and "--n-gpu-layers 999" in out  # recognised: Qwen sampling
    assert "takes no tools" not in out
    assert "--alias Qwen3-Coder-30B-A3B-Instruct-Q4_K_M" in out
    choice = file_choice(read_gguf(path), Catalog.load())
    assert (choice.model.experts, choice.model.native_context) == (8, 262_144)
    assert choice.weights_gb()[0] > 0  # the routed experts, by tensor name


def test_gguf_with_a_catalog_name_of_another_architecture(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "small.gguf")
    code, out = run_cli("serve", "plan", "--model", "30b", "--gguf", str(path), *CPU)
    assert code == 0
    assert "Note: the file is llama, not Qwen3-Coder-30B-A3B-Instruct: planning from it." in out
    assert "Tiny Llama (" in out and "context: longest that fits (up to 2,048)" in out


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match=r"No such GGUF file: .*missing\.gguf"):
        run_cli("serve", "--model", str(tmp_path / "missing.gguf"), *CPU, "--dry-run")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(write_gguf(tmp_path / "whole.gguf").read_bytes()[:200])
    with pytest.raises(ServeError, match=r"Cannot read .*broken\.gguf as a GGUF file"):
        read_gguf(broken)
    (tmp_path / "text.gguf").write_text("not a model")
    with pytest.raises(ServeError, match="no GGUF magic"):
        read_gguf(tmp_path / "text.gguf")


def test_a_file_without_a_template(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "bare.gguf", template=None)
    code, out = run_cli("serve", "plan", "--model", str(path), *CPU, "--json")
    assert code == 0
    assert '"chat_template": false' in out and '"template_takes_tools": false' in out
    assert "has no chat template (llama.cpp falls back to ChatML" in out


def test_help_and_catalog_plans_do_not_import_gguf() -> None:
    probe = (
        "import sys\n"
        "from qwen_code import cli\n"
        "code = cli.main(['serve', 'plan', '-m', '30b:fp8', '--gpus', '1xH100'])\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('gguf' in sys.modules, 'numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == "False False", done.stdout + done.stderr
