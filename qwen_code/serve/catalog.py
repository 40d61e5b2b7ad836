"""The data behind `serve` and `cost`: models, GPU types, prices and throughput.

Each table is a JSON file shipped in `qwen_code/serve/data/`; a file of the same name in
`$QWEN_HOME/serve/` is merged over it (objects key by key, anything else replaced), so users
add a fine-tune, a GPU type or their own measured throughput without touching the package.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qwen_code.errors import QwenCodeError
from qwen_code.settings_files import qwen_home

if TYPE_CHECKING:
    from qwen_code.serve.gguf_file import GgufInfo

GB = 1e9
"""The planner's unit (serving.md §8.3: GB = 1e9 bytes)."""


class ServeError(QwenCodeError):
    """A plan, an engine or a launch cannot go ahead; the message says why and what to do."""


def user_dir(home: Path | None = None) -> Path:
    """Where the user's tables live: `serve/` in the qwen-code home (the command line
    passes its Environment's; `$QWEN_HOME` when not given)."""
    return (home if home is not None else qwen_home()) / "serve"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        both = isinstance(old, dict) and isinstance(value, dict)
        merged[key] = _merge(old, value) if both else value
    return merged


def load_table(name: str, *, home: Path | None = None) -> dict[str, Any]:
    """A shipped data file with the user's file of the same name merged over it."""
    text = resources.files("qwen_code.serve").joinpath("data", name).read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    user = (home or user_dir()) / name
    if user.is_file():
        try:
            extra = json.loads(user.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ServeError(f"Cannot read {user}: {exc}") from exc
        if not isinstance(extra, dict):
            raise ServeError(f"{user} must hold a JSON object.")
        table = _merge(table, extra)
    return {k: v for k, v in table.items() if not k.startswith("_")}


# --- models ---------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True)


class ParamSplit(BaseModel):
    model_config = _STRICT
    experts: float = Field(ge=0)
    """Routed experts, billions of parameters."""
    dense: float = Field(ge=0)
    """Attention, linear attention and shared experts, billions."""
    embeddings: float = Field(ge=0)
    """Embedding and (untied) lm_head, billions."""


class Yarn(BaseModel):
    model_config = _STRICT
    max_factor: float = Field(gt=1)
    original_max_position_embeddings: int = Field(gt=0)


class Variant(BaseModel):
    model_config = _STRICT
    format: Literal["safetensors", "gguf"]
    repo: str
    quant: str | None = None
    """GGUF quant tag (llama-server `-hf REPO:QUANT`)."""
    expert_bits: float = 16
    dense_bits: float = 16
    embed_bits: float = 16
    quant_block: int | None = None
    """FP8 block size: expert columns per GPU must be a multiple of it (serving.md §3)."""
    file_gb: float | None = None
    """Measured file size, when known (overrides the bits)."""
    hopper_env: dict[str, dict[str, str]] = {}
    """Environment per engine on compute capability 9.x GPUs."""


class Model(BaseModel):
    model_config = _STRICT
    display: str
    aliases: list[str] = []
    architecture: str = ""
    layers: int = Field(gt=0)
    kv_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    experts: int = Field(default=0, ge=0)
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    linear_v_heads: int = 0
    recurrent_state_bytes: int = 0
    """Fixed per-sequence state (Coder-Next's linear-attention layers), BF16."""
    params_b: ParamSplit
    native_context: int = Field(gt=0)
    rope_theta: float = 10_000_000
    yarn: Yarn | None = None
    sampling: dict[str, float] = {}
    tool_call_parser: dict[str, str] = {}
    min_versions: dict[str, str] = {}
    default_variant: str
    variants: dict[str, Variant]
    sources: list[str] = []


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """One model in one weight format (a catalog entry, or a local GGUF file)."""

    key: str
    model: Model
    variant_name: str
    served: str | None = None
    """The served model name when not `key-variant` (a local file: its stem)."""
    gguf: GgufInfo | None = None
    """The local GGUF file this choice was read from."""

    @property
    def variant(self) -> Variant:
        return self.model.variants[self.variant_name]

    @property
    def name(self) -> str:
        """The served model name, e.g. `qwen3-coder-480b-a35b-fp8`."""
        return self.served or f"{self.key}-{self.variant_name}"

    @property
    def is_gguf(self) -> bool:
        return self.variant.format == "gguf"

    def weights_gb(self) -> tuple[float, float, float]:
        """(experts, dense, embeddings) in GB at this variant's precision."""
        p, v = self.model.params_b, self.variant
        if v.file_gb is not None:
            total = p.experts + p.dense + p.embeddings
            scale = v.file_gb / total
            return p.experts * scale, p.dense * scale, p.embeddings * scale
        experts, dense = p.experts * v.expert_bits / 8, p.dense * v.dense_bits / 8
        return experts, dense, p.embeddings * v.embed_bits / 8


class Catalog:
    """The known models, by every name a user may type."""

    def __init__(
        self, table: dict[str, Any], source: str = "models.json", *, tables: Path | None = None
    ) -> None:
        self.tables = tables
        """The folder of the user's tables this catalog was read with (None: `user_dir()`)."""
        self.models: dict[str, Model] = {}
        for key, entry in table.items():
            try:
                self.models[key] = Model.model_validate(entry)
            except ValidationError as exc:
                raise ServeError(f"Invalid {source} entry {key!r}: {_problems(exc)}") from exc
            if self.models[key].default_variant not in self.models[key].variants:
                raise ServeError(f"{source} entry {key!r}: default_variant is not a variant.")

    @classmethod
    def load(cls, home: Path | None = None) -> Catalog:
        """The shipped models with `models.json` of `home` (a `user_dir()`) merged over."""
        return cls(load_table("models.json", home=home), tables=home)

    @cached_property
    def _names(self) -> dict[str, ModelChoice]:
        names: dict[str, ModelChoice] = {}
        for key, model in self.models.items():
            default = ModelChoice(key, model, model.default_variant)
            for base in (key, *model.aliases):
                names.setdefault(base.lower(), default)
            for vname, variant in model.variants.items():
                choice = ModelChoice(key, model, vname)
                for base in (key, *model.aliases):
                    names.setdefault(f"{base}-{vname}".lower(), choice)
                    names.setdefault(f"{base}:{vname}".lower(), choice)
                repo = variant.repo.lower()
                repo = f"{repo}:{variant.quant.lower()}" if variant.quant else repo
                names.setdefault(repo, choice)
        return names

    def resolve(self, name: str) -> ModelChoice:
        """`480b`, `480b:bf16`, `qwen3-coder-30b-a3b-q4_k_m` or a Hugging Face repo id."""
        key = name.strip().lower()
        choice = self._names.get(key) or self._names.get(f"qwen/{key}")
        if choice is None:
            raise ServeError(
                f"Unknown model {name!r}.",
                hint="Known: "
                + ", ".join(self.choices())
                + f". Add your own in {(self.tables or user_dir()) / 'models.json'}.",
            )
        return choice

    def choices(self) -> list[str]:
        return [f"{k}:{v}" for k, m in self.models.items() for v in m.variants]


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


# --- GPU types ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuType:
    name: str
    memory_gb: float
    compute_capability: float | None = None
    tdp_w: float | None = None

    @property
    def native_fp8(self) -> bool:
        """Block-wise FP8 runs natively from compute capability 9.0 (qwen3-coder.md §1)."""
        return self.compute_capability is not None and self.compute_capability >= 9.0

    @property
    def hopper(self) -> bool:
        return self.compute_capability is not None and 9.0 <= self.compute_capability < 10.0


@dataclass(frozen=True, slots=True)
class GpuSet:
    count: int
    """GPUs per node."""
    gpu: GpuType

    def label(self) -> str:
        return f"{self.count}x{self.gpu.name}"


def gpu_types(home: Path | None = None) -> dict[str, dict[str, Any]]:
    return load_table("gpus.json", home=home)


def find_gpu_type(name: str, home: Path | None = None) -> GpuType | None:
    """A known type by key (`H200`, `rtx4090`) or by its nvidia-smi pattern (`NVIDIA H200`)."""
    types = gpu_types(home)
    wanted = name.strip().lower().replace(" ", "")
    for key, spec in types.items():
        if key.lower() == wanted:
            return _gpu(key, spec)
    for key, spec in types.items():
        if re.search(spec.get("match", re.escape(key)), name, re.IGNORECASE):
            return _gpu(key, spec)
    return None


def _gpu(key: str, spec: dict[str, Any]) -> GpuType:
    return GpuType(
        name=key,
        memory_gb=float(spec["memory_gb"]),
        compute_capability=spec.get("compute_capability"),
        tdp_w=spec.get("tdp_w"),
    )


_GPU_SPEC = re.compile(r"^\s*(?:(\d+)\s*[x×*]\s*)?([A-Za-z0-9_.\- ]+?)\s*$")


def parse_gpus(spec: str, gpu_mem: float | None = None, home: Path | None = None) -> GpuSet:
    """`8xH200`, `H100` (one), `4` or `4xMI300X` with `--gpu-mem`; `--gpu-mem` also
    overrides a known type's memory."""
    text = spec.strip()
    if text.isdigit():
        count, type_name = int(text), "GPU"
    else:
        match = _GPU_SPEC.match(text)
        if not match:
            raise ServeError(f"Cannot read --gpus {spec!r}: write it as COUNTxTYPE, e.g. 8xH200.")
        count, type_name = int(match[1] or 1), match[2].strip()
    if count < 1:
        raise ServeError("--gpus needs at least one GPU.")
    known = None if type_name == "GPU" else find_gpu_type(type_name, home)
    if known is None and gpu_mem is None:
        names = ", ".join(gpu_types(home))
        raise ServeError(
            f"Unknown GPU type {type_name!r}.",
            hint=f"Known: {names}. For another GPU add --gpu-mem GB (memory per GPU).",
        )
    if known is None:
        return GpuSet(count, GpuType(name=type_name, memory_gb=float(gpu_mem or 0)))
    if gpu_mem is not None:
        known = GpuType(known.name, float(gpu_mem), known.compute_capability, known.tdp_w)
    return GpuSet(count, known)


# --- sizes written the way people write them --------------------------------------------------

_SIZE = re.compile(r"^\s*([\d.]+)\s*([kmb]?)\s*$", re.IGNORECASE)


def parse_tokens(text: str | int, *, binary: bool) -> int:
    """`64K`, `1M`, `262144`. Contexts use binary units (64K = 65,536), volumes decimal
    (50M = 50,000,000)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ServeError(f"Cannot read {text!r} as a token count (e.g. 65536, 64K, 1M).")
    base = 1024 if binary else 1000
    power = {"": 0, "k": 1, "m": 2, "b": 3}[match[2].lower()]
    return round(float(match[1]) * base**power)
