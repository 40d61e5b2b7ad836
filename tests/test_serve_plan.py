"""The planner against serving.md §3 and §8, the model catalog, GPU types and detection."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from qwen_code.serve import gpus as detect
from qwen_code.serve.catalog import Catalog, ServeError, parse_gpus, parse_tokens
from qwen_code.serve.plan import Fit, Plan, PlanRequest, make_plan
from qwen_code.serve.render import plan_json, plan_text
from tests.helpers import write_json

CATALOG = Catalog.load()


def plan(model: str, gpus: str, **kwargs: object) -> Plan:
    return make_plan(PlanRequest(choice=CATALOG.resolve(model), gpus=parse_gpus(gpus), **kwargs))


def layout(p: Plan, engine: str, label: str) -> Fit:
    found = [f for f in p.fits if f.layout.engine == engine and f.layout.label() == label]
    assert len(found) == 1, [f"{f.layout.engine} {f.layout.label()}" for f in p.fits]
    return found[0]


# --- catalog ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("480b", "qwen3-coder-480b-a35b-fp8"),
        ("480B:bf16", "qwen3-coder-480b-a35b-bf16"),
        ("qwen3-coder-30b-a3b-q4_k_m", "qwen3-coder-30b-a3b-q4_k_m"),
        ("Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8", "qwen3-coder-480b-a35b-fp8"),
        ("unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF:UD-Q4_K_XL", "qwen3-coder-30b-a3b-ud-q4_k_xl"),
        ("next-bf16", "qwen3-coder-next-bf16"),
    ],
)
def test_model_names_resolve(name: str, expected: str) -> None:
    assert CATALOG.resolve(name).name == expected


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ServeError) as err:
        CATALOG.resolve("qwen9-coder")
    assert "Unknown model 'qwen9-coder'" in str(err.value)
    assert "qwen3-coder-480b-a35b:fp8" in str(err.value)


def test_catalog_holds_the_reference_constants() -> None:
    big = CATALOG.resolve("480b").model
    assert (big.layers, big.attention_heads, big.kv_heads, big.head_dim) == (62, 96, 8, 128)
    assert (big.experts, big.experts_per_token, big.moe_intermediate_size) == (160, 8, 2560)
    assert big.native_context == 262_144 and big.yarn and big.yarn.max_factor == 4
    assert big.tool_call_parser == {"vllm": "qwen3_coder", "sglang": "qwen3_coder"}
    assert big.sampling == {
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "repetition_penalty": 1.05,
    }
    assert CATALOG.resolve("next").model.sampling == {
        "temperature": 1.0,
        "top_p": 0.95,
        "top_k": 40,
    }


@pytest.mark.parametrize(
    ("model", "total_gb"),
    [("480b:bf16", 960.2), ("480b:fp8", 482.0), ("30b:bf16", 61.0), ("30b:fp8", 31.1)],
)
def test_weight_totals_match_serving_md_8_2(model: str, total_gb: float) -> None:
    assert round(sum(CATALOG.resolve(model).weights_gb()), 1) == total_gb


@pytest.mark.parametrize(
    ("model", "bf16", "fp8"),
    [("480b", 253_952, 126_976), ("30b", 98_304, 49_152), ("next", 24_576, 12_288)],
)
def test_kv_bytes_per_token(model: str, bf16: int, fp8: int) -> None:
    assert plan(model, "8xH200").kv_bytes_per_token == bf16
    assert plan(model, "8xH200", kv_cache_dtype="fp8").kv_bytes_per_token == fp8


def test_user_catalog_entries_are_merged(tmp_path: Path) -> None:
    home = Path(os.environ["QWEN_HOME"]) / "serve"
    home.mkdir(parents=True)
    base = json.loads(json.dumps(CATALOG.models["qwen3-coder-30b-a3b"].model_dump()))
    base.update(display="My fine-tune", aliases=["mine"], default_variant="bf16")
    write_json(home / "models.json", {"my-coder": base})
    choice = Catalog.load().resolve("mine")
    assert (choice.name, choice.model.display) == ("my-coder-bf16", "My fine-tune")
    write_json(home / "models.json", {"broken": {"display": "x"}})
    with pytest.raises(ServeError, match=r"Invalid models\.json entry 'broken'"):
        Catalog.load()


# --- serving.md §8.4: 480B per-GPU layouts ------------------------------------------------------

# (variant, engine, layout, weights GB, {gpu: KV tokens per pool rounded as in the table or None})
TABLE_8_4 = [
    ("fp8", "vllm", "DP8 + EP8", 72.4, {"H100": None, "H200": 203_000, "B200": 341_000}),
    ("fp8", "sglang", "TP8 + EP8", 60.2, {"H100": 276_000, "H200": 2_000_000, "B200": 3_100_000}),
    ("bf16", "vllm", "TP8 + EP8", 120.0, {"H100": None, "H200": 122_000, "B200": 1_200_000}),
]


@pytest.mark.parametrize(("variant", "engine", "label", "weights", "tokens"), TABLE_8_4)
@pytest.mark.parametrize("gpu", ["H100", "H200", "B200"])
def test_480b_layouts_match_table_8_4(
    variant: str, engine: str, label: str, weights: float, tokens: dict[str, int | None], gpu: str
) -> None:
    fit = layout(plan(f"480b:{variant}", f"8x{gpu}", context=32_768), engine, label)
    assert round(fit.weights_gb, 1) == weights
    expected = tokens[gpu]
    if expected is None:
        assert not fit.fits
        assert fit.reasons[0].startswith("Out of memory")
        return
    digits = len(str(expected)) - len(str(expected).rstrip("0"))
    assert fit.fits
    assert round(fit.kv_tokens, -digits) == expected


def test_480b_fp8_dp8_ep_on_h100_is_rejected_by_how_much() -> None:
    fit = layout(plan("480b:fp8", "8xH100"), "vllm", "DP8 + EP8")
    assert fit.reasons == (
        "Out of memory: weights need 72.4 GB per GPU, 69.0 GB usable (80 GB x 0.9 - 3 GB); "
        "short by 3.4 GB.",
    )


def test_480b_fp8_dp8_ep_on_h200_fits_with_its_kv_budget() -> None:
    fit = layout(plan("480b:fp8", "8xH200", context=131_072), "vllm", "DP8 + EP8")
    assert (fit.fits, fit.kv_tokens, fit.layout.pools, fit.total_kv_tokens) == (
        True,
        202_850,
        8,
        1_622_800,
    )
    assert (fit.context, fit.max_concurrency) == (131_072, 8)
    assert round(fit.usable_gb - fit.weights_gb, 1) == 51.5


def test_tp8_ep8_is_60_2_gb_per_gpu_with_one_kv_head_per_gpu() -> None:
    fit = layout(plan("480b:fp8", "8xH100"), "vllm", "TP8 + EP8")
    assert (round(fit.weights_gb, 1), fit.kv_bytes_per_token, fit.kv_tokens) == (
        60.2,
        31_744,
        275_823,
    )


# --- serving.md §8.5: 30B on one GPU (the FP8 rows used the rounded "~31 GB") -----------------


@pytest.mark.parametrize(
    ("variant", "gpu", "table", "tolerance"),
    [
        ("bf16", "H100", 81_000, 0.01),
        ("bf16", "H200", 640_000, 0.001),
        ("fp8", "H100", 386_000, 0.005),
        ("fp8", "H200", 945_000, 0.005),
    ],
)
def test_30b_on_one_gpu_matches_table_8_5(
    variant: str, gpu: str, table: int, tolerance: float
) -> None:
    fit = layout(plan(f"30b:{variant}", f"1x{gpu}", context=32_768), "vllm", "TP1")
    assert fit.fits
    assert abs(fit.kv_tokens - table) / table < tolerance


# --- structural rejections ------------------------------------------------------------------------


def test_30b_fp8_tp4_rejected_by_block_divisibility() -> None:
    fit = layout(plan("30b:fp8", "4xH100"), "vllm", "TP4")
    assert not fit.fits
    assert "FP8 block divisibility: 768/4 = 192, not a multiple of 128" in fit.reasons[0]
    assert "expert TP must be one of 1, 2, 3, 6" in fit.reasons[0]
    assert "--enable-expert-parallel" in fit.reasons[0]
    assert layout(plan("30b:fp8", "4xH100"), "vllm", "TP4 + EP4").fits


def test_480b_fp8_tp8_rejected_and_the_valid_sizes_listed() -> None:
    p = plan("480b:fp8", "8xH200")
    reason = layout(p, "vllm", "TP8").reasons[0]
    assert "2560/8 = 320, not a multiple of 128" in reason
    assert "is not divisible by weight quantization block_n = 128" in reason
    assert "1, 2, 4, 5, 10, 20" in reason
    assert layout(p, "sglang", "TP8 + EP2").fits  # expert TP 4: 2560/4 = 640
    assert "Use a larger --ep" in layout(p, "sglang", "TP8").reasons[0]


def test_bf16_has_no_divisibility_limit() -> None:
    assert layout(plan("480b:bf16", "8xH200"), "vllm", "TP8").fits


def test_attention_heads_must_split() -> None:
    fit = layout(plan("30b:fp8", "3xL40S"), "vllm", "TP3")
    assert fit.reasons[0] == "32 attention heads do not split over TP 3."


def test_kv_heads_fewer_than_tp_are_replicated() -> None:
    fit = layout(plan("next:bf16", "4xH100"), "sglang", "TP4")
    assert fit.fits
    assert fit.kv_bytes_per_token == 24_576 / 2
    assert "KV heads (2) fewer than TP 4: each is replicated on 2 GPUs" in fit.notes[0]


def test_kv_heads_that_cannot_be_replicated_evenly_are_rejected() -> None:
    home = Path(os.environ["QWEN_HOME"]) / "serve"
    home.mkdir(parents=True)
    custom = {"qwen3-coder-30b-a3b": {"attention_heads": 48}}
    write_json(home / "models.json", custom)
    choice = Catalog.load().resolve("30b:bf16")
    p = make_plan(PlanRequest(choice=choice, gpus=parse_gpus("6xH100"), engines=("vllm",)))
    fit = next(f for f in p.fits if f.layout.label() == "TP6")
    assert fit.reasons[0] == (
        "KV heads (4) fewer than TP 6, and 6 is not a multiple of 4: the heads cannot be "
        "replicated evenly."
    )


# --- context, concurrency, YaRN ---------------------------------------------------------------


def test_auto_context_is_the_longest_that_fits() -> None:
    p = plan("480b:fp8", "8xH200")
    assert [(f.layout.label(), f.context) for f in p.fitting[:1]] == [("TP8 + EP8", 262_144)]
    assert layout(p, "vllm", "DP8 + EP8").context == 131_072
    assert layout(plan("480b:bf16", "8xH200"), "vllm", "TP8").context == 65_536


def test_context_that_does_not_fit_is_explained() -> None:
    fit = layout(plan("480b:bf16", "8xH200", context=262_144), "vllm", "TP8")
    assert fit.reasons == (
        "Weights fit (120.0 of 123.9 GB per GPU), but the KV cache holds only 122,172 tokens "
        "per replica: less than one 262,144-token sequence; try --kv-cache-dtype fp8.",
    )


def test_concurrency_requirement() -> None:
    fit = layout(plan("480b:fp8", "8xH200", context=262_144, concurrency=8), "vllm", "TP8 + EP8")
    assert "holds 7 sequences of 262,144 tokens; --concurrency 8 needs more" in fit.reasons[0]
    best = plan("480b:fp8", "8xH200", concurrency=8).best
    assert best is not None and best.max_concurrency >= 8


@pytest.mark.parametrize(
    ("context", "factor"), [(262_144, None), (300_000, 2.0), (524_288, 2.0), (1_000_000, 4.0)]
)
def test_yarn_factor(context: int, factor: float | None) -> None:
    assert plan("480b:fp8", "8xB200", context=context, kv_cache_dtype="fp8").yarn_factor == factor


def test_yarn_limits() -> None:
    with pytest.raises(ServeError, match="at most 1,048,576"):
        plan("480b:fp8", "8xB200", context=2_000_000)
    with pytest.raises(ServeError, match="no published YaRN setting"):
        plan("next:fp8", "8xB200", context=524_288)


def test_fp8_on_a100_is_noted() -> None:
    assert "compute capability 9.0" in plan("30b:fp8", "1xA100").notes[0]


# --- llama.cpp and multi-node -------------------------------------------------------------------


def test_llama_cpp_offloads_experts_when_vram_is_short() -> None:
    p = plan("30b:q4_k_m", "1xRTX4090")
    best = p.best
    assert best is not None and best.layout.experts_on_cpu
    assert round(best.cpu_ram_gb, 1) == 17.6
    assert (
        "less than one 32,768-token sequence"
        in layout(p, "llama.cpp", "all layers on 1 GPU").reasons[0]
    )
    assert p.notes == ("Not planned: vllm, sglang (they do not serve GGUF files).",)


def test_llama_cpp_is_single_host() -> None:
    fit = plan("30b:q4_k_m", "1xH100", nodes=2).fits[0]
    assert not fit.fits and "one machine" in fit.reasons[0]


def test_multi_node_sizes_across_nodes() -> None:
    p = plan("480b:bf16", "8xH100", nodes=2)
    assert "TP8 x PP2" in [f.layout.label() for f in p.fitting]
    fit = layout(p, "vllm", "TP8 x PP2")
    assert round(fit.weights_gb, 1) == 60.0
    assert fit.kv_bytes_per_token == 253_952 / 16
    assert p.best is not None and p.best.layout.gpus == 16


# --- output -----------------------------------------------------------------------------------


def test_plan_text_and_json() -> None:
    p = plan("480b:fp8", "8xH100")
    text = plan_text(p)
    assert "Fits (best first):" in text and "Rejected:" in text
    assert "- vllm DP8 + EP8: Out of memory" in text
    data = plan_json(p)
    assert data["model"] == "qwen3-coder-480b-a35b-fp8"
    first = data["layouts"][0]
    assert (first["engine"], first["layout"], first["fits"]) == ("vllm", "TP8 + EP8", True)
    assert first["kv_tokens_per_replica"] == 275_823
    assert all(entry["reasons"] for entry in data["layouts"] if not entry["fits"])


@pytest.mark.parametrize(
    ("text", "binary", "value"),
    [
        ("64K", True, 65_536),
        ("1M", True, 1_048_576),
        ("262144", True, 262_144),
        ("50M", False, 50_000_000),
    ],
)
def test_parse_tokens(text: str, binary: bool, value: int) -> None:
    assert parse_tokens(text, binary=binary) == value


def test_parse_gpus() -> None:
    assert parse_gpus("8xH200").label() == "8xH200"
    assert parse_gpus("H100").count == 1
    assert parse_gpus("2 x rtx4090").gpu.memory_gb == 24
    assert parse_gpus("4xMI300X", gpu_mem=192).gpu.memory_gb == 192
    assert parse_gpus("8xH100", gpu_mem=94).gpu.memory_gb == 94
    with pytest.raises(ServeError, match="--gpu-mem"):
        parse_gpus("4xMI300X")


# --- nvidia-smi ---------------------------------------------------------------------------------

SMI_8XH100 = "".join(f"{i}, NVIDIA H100 80GB HBM3, 81559\n" for i in range(8))


def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, code: int = 0) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")


def test_detect_with_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_smi(tmp_path, monkeypatch, SMI_8XH100)
    found = detect.detect(env={})
    assert found.gpus.label() == "8xH100" and found.gpus.gpu.memory_gb == 80
    assert "8 GPU(s) (NVIDIA H100 80GB HBM3)" in found.describe()
    assert detect.detect(env={"CUDA_VISIBLE_DEVICES": "0,1"}).gpus.count == 2


def test_detect_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(ServeError, match="nvidia-smi was not found"):
        detect.detect(env={})
    fake_smi(tmp_path, monkeypatch, "NVIDIA-SMI has failed\n", code=9)
    with pytest.raises(ServeError, match="nvidia-smi failed \\(exit 9\\)"):
        detect.detect(env={})
    fake_smi(tmp_path, monkeypatch, "")
    with pytest.raises(ServeError, match="lists no usable GPU"):
        detect.detect(env={})


def test_unknown_and_mixed_gpus() -> None:
    gpus = detect.parse_query("0, NVIDIA A100-SXM4-40GB, 40960\n1, NVIDIA H100 80GB HBM3, 81559\n")
    assert detect.gpu_type_for(gpus[0]).memory_gb == 40.0
    assert detect.gpu_type_for(gpus[1]).name == "H100"
    other = detect.gpu_type_for(detect.DetectedGpu(0, "NVIDIA RTX PRO 6000", 97887))
    assert (other.name, other.memory_gb) == ("RTX-PRO-6000", 95.6)
