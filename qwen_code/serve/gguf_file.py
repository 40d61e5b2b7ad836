"""A local GGUF file's metadata: what the planner needs to serve it (architecture, layers,
heads, KV heads, context length, chat template, size, quant) without loading the weights.

The `gguf` package (PyPI, imported only here and only when a file is read) names the value
types, the quant types and their block sizes. The header is walked here rather than with
`gguf.GGUFReader`: that reader turns every element of every array into a numpy view, which
takes about 6 s for a 135M model's 49,152-token vocabulary (and more for Qwen's 151,936
tokens and merges), while only the scalars, the template and the tensor table are needed.
`tests/test_serve_gguf.py` checks this reader against `GGUFReader` on a written file.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_code.serve.catalog import GB, Catalog, Model, ModelChoice, ParamSplit, ServeError, Variant

MAX_ARRAY_KEPT = 256
"""Arrays longer than this (vocabularies, merges) are skipped, not read."""
TOOLS_IN_TEMPLATE = re.compile(r"\btools\b")


@dataclass(frozen=True, slots=True, kw_only=True)
class GgufInfo:
    path: Path
    file_size: int
    architecture: str
    name: str
    """`general.name`, else the file's stem."""
    layers: int
    attention_heads: int
    kv_heads: int
    embedding_length: int
    head_dim: int
    context_length: int
    chat_template: str | None
    quant: str | None
    expert_count: int = 0
    experts_used: int = 0
    expert_ff_length: int = 0
    bytes_by_part: dict[str, int] = field(default_factory=dict)
    """Tensor bytes: `experts` (routed experts), `embeddings`, `dense` (the rest)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Every key-value pair (long arrays as None)."""

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def template_takes_tools(self) -> bool:
        """Whether the chat template renders a tool list at all (mentions `tools`)."""
        return bool(self.chat_template and TOOLS_IN_TEMPLATE.search(self.chat_template))

    def describe(self) -> str:
        heads = f"{self.attention_heads} heads / {self.kv_heads} KV heads"
        experts = f", {self.expert_count} experts" if self.expert_count else ""
        quant = f", {self.quant}" if self.quant else ""
        if self.chat_template is None:
            template = "no chat template"
        else:
            template = (
                "chat template with tools"
                if self.template_takes_tools
                else ("chat template without tools")
            )
        return (
            f"{self.path}: {self.architecture}, {self.layers} layers, {heads}{experts}, "
            f"context {self.context_length:,}{quant}, {self.file_size / GB:.2f} GB; {template}"
        )


def is_gguf_path(name: str) -> bool:
    return name.strip().lower().endswith(".gguf")


def read_gguf(path: Path) -> GgufInfo:
    """The metadata of the GGUF file at `path`; a ServeError that says why when it is not
    one (or is truncated)."""
    try:
        size = path.stat().st_size
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm,
        ):
            meta, tensors = _Walker(mm).header()
    except FileNotFoundError as exc:
        raise ServeError(f"No such GGUF file: {path}") from exc
    except (OSError, ValueError, struct.error, IndexError) as exc:
        raise ServeError(f"Cannot read {path} as a GGUF file: {exc}") from exc
    return info_from(path, size, meta, tensors)


# --- the header ---------------------------------------------------------------------------------


class _Walker:
    """Reads the key-value section and the tensor table of a little-endian GGUF file."""

    def __init__(self, data: mmap.mmap) -> None:
        import gguf

        self.data, self.off, self.gguf = data, 0, gguf
        value = gguf.GGUFValueType
        fixed: dict[Any, str] = {
            value.UINT8: "<B", value.INT8: "<b", value.UINT16: "<H", value.INT16: "<h",
            value.UINT32: "<I", value.INT32: "<i", value.FLOAT32: "<f", value.BOOL: "<?",
            value.UINT64: "<Q", value.INT64: "<q", value.FLOAT64: "<d",
        }  # fmt: skip
        self.fixed = {int(k): struct.Struct(v) for k, v in fixed.items()}
        self.string_type, self.array_type = int(value.STRING), int(value.ARRAY)

    def _take(self, fmt: struct.Struct) -> Any:
        (value,) = fmt.unpack_from(self.data, self.off)
        self.off += fmt.size
        return value

    def _u32(self) -> int:
        return int(self._take(self.fixed[int(self.gguf.GGUFValueType.UINT32)]))

    def _u64(self) -> int:
        return int(self._take(self.fixed[int(self.gguf.GGUFValueType.UINT64)]))

    def _string(self) -> str:
        length = self._u64()
        raw = self.data[self.off : self.off + length]
        if len(raw) != length:
            raise ValueError("truncated string")
        self.off += length
        return raw.decode("utf-8", "replace")

    def _value(self, kind: int) -> Any:
        if kind in self.fixed:
            return self._take(self.fixed[kind])
        if kind == self.string_type:
            return self._string()
        if kind == self.array_type:
            return self._array()
        raise ValueError(f"unknown value type {kind} at byte {self.off}")

    def _array(self) -> list[Any] | None:
        kind, count = self._u32(), self._u64()
        if count <= MAX_ARRAY_KEPT:
            return [self._value(kind) for _ in range(count)]
        if kind in self.fixed:
            self.off += self.fixed[kind].size * count
        else:
            for _ in range(count):
                self._value(kind)
        return None

    def header(self) -> tuple[dict[str, Any], list[tuple[str, list[int], int]]]:
        if bytes(self.data[:4]) != b"GGUF":
            raise ValueError("no GGUF magic number at the start")
        self.off = 4
        version = self._u32()
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} (qwen-code reads 2 and 3, little-endian)")
        tensor_count, kv_count = self._u64(), self._u64()
        meta = {}
        for _ in range(kv_count):
            key = self._string()
            meta[key] = self._value(self._u32())
        tensors = []
        for _ in range(tensor_count):
            name = self._string()
            dims = [self._u64() for _ in range(self._u32())]
            tensors.append((name, dims, self._u32()))
            self._u64()  # the data offset
        return meta, tensors


# --- what the planner needs -----------------------------------------------------------------------


def _tensor_bytes(dims: list[int], kind: int) -> int:
    import gguf

    try:
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(kind)]
    except (ValueError, KeyError):
        return 0
    count = 1
    for dim in dims:
        count *= dim
    return count // block * size


def _part(name: str) -> str:
    if "_exps." in name:
        return "experts"
    if name.startswith(("token_embd.", "output.")):
        return "embeddings"
    return "dense"


def _quant(meta: dict[str, Any], tensors: list[tuple[str, list[int], int]]) -> str | None:
    """`general.file_type` by name (Q4_K_M), else the type holding the most bytes."""
    import gguf

    file_type = meta.get("general.file_type")
    if isinstance(file_type, int):
        try:
            name = gguf.LlamaFileType(file_type).name
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    totals: dict[int, int] = {}
    for _, dims, kind in tensors:
        totals[kind] = totals.get(kind, 0) + _tensor_bytes(dims, kind)
    if not totals:
        return None
    kind = max(totals, key=lambda k: totals[k])
    try:
        return gguf.GGMLQuantizationType(kind).name
    except ValueError:
        return None


def _int(meta: dict[str, Any], key: str, default: int = 0) -> int:
    """An integer key; a per-layer array (some models vary KV heads by layer) gives its
    largest value, which is what the KV cache must hold."""
    value = meta.get(key, default)
    if isinstance(value, list):
        value = max((v for v in value if isinstance(v, int | float)), default=default)
    return int(value) if isinstance(value, int | float) else default


def info_from(
    path: Path, size: int, meta: dict[str, Any], tensors: list[tuple[str, list[int], int]]
) -> GgufInfo:
    arch = str(meta.get("general.architecture") or "")
    if not arch:
        raise ServeError(f"{path} has no general.architecture: not a model GGUF file.")

    def key(name: str) -> str:
        return f"{arch}.{name}"

    layers, heads = _int(meta, key("block_count")), _int(meta, key("attention.head_count"))
    embedding = _int(meta, key("embedding_length"))
    if layers < 1 or heads < 1 or embedding < 1:
        raise ServeError(
            f"{path} ({arch}) lacks {arch}.block_count, attention.head_count or "
            "embedding_length: it is not a language model llama.cpp can serve."
        )
    parts: dict[str, int] = {"experts": 0, "dense": 0, "embeddings": 0}
    for name, dims, kind in tensors:
        parts[_part(name)] += _tensor_bytes(dims, kind)
    template = meta.get("tokenizer.chat_template")
    return GgufInfo(
        path=path,
        file_size=size,
        architecture=arch,
        name=str(meta.get("general.name") or path.stem),
        layers=layers,
        attention_heads=heads,
        kv_heads=_int(meta, key("attention.head_count_kv"), heads) or heads,
        embedding_length=embedding,
        head_dim=_int(meta, key("attention.key_length")) or embedding // heads,
        context_length=_int(meta, key("context_length"), 4096) or 4096,
        chat_template=template if isinstance(template, str) and template.strip() else None,
        quant=_quant(meta, tensors),
        expert_count=_int(meta, key("expert_count")),
        experts_used=_int(meta, key("expert_used_count")),
        expert_ff_length=_int(meta, key("expert_feed_forward_length")),
        bytes_by_part=parts,
        metadata=meta,
    )


# --- a file as a model choice -------------------------------------------------------------------


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def catalog_match(info: GgufInfo, catalog: Catalog) -> Model | None:
    """The catalog model this file is a quant of (by name and architecture), if any: its
    sampling and YaRN settings then apply. A Llama or SmolLM file gets neither."""
    names = (_squash(info.name), _squash(info.stem))
    for key, model in catalog.models.items():
        if _squash(model.architecture) != _squash(info.architecture):
            continue
        if any(n.startswith(_squash(k)) for n in names for k in (key, model.display) if k):
            return model
    return None


def file_model(info: GgufInfo, like: Model | None) -> Model:
    """A catalog-shaped model from the file's own dimensions; the parameter split holds GB
    of tensors (the variant's `file_gb` scales them to the file's size)."""
    parts = {k: v / GB for k, v in info.bytes_by_part.items()}
    if sum(parts.values()) <= 0:
        parts = {"experts": 0.0, "dense": info.file_size / GB, "embeddings": 0.0}
    same = like is not None and like.layers == info.layers
    variant_name = (info.quant or "gguf").lower()
    variant = Variant(
        format="gguf", repo=str(info.path), quant=info.quant, file_gb=info.file_size / GB
    )
    return Model(
        display=info.name,
        architecture=info.architecture,
        layers=info.layers,
        kv_layers=like.kv_layers if like and same else info.layers,
        hidden_size=info.embedding_length,
        attention_heads=info.attention_heads,
        kv_heads=info.kv_heads,
        head_dim=info.head_dim,
        experts=info.expert_count,
        experts_per_token=info.experts_used,
        moe_intermediate_size=info.expert_ff_length,
        linear_v_heads=like.linear_v_heads if like and same else 0,
        recurrent_state_bytes=like.recurrent_state_bytes if like and same else 0,
        params_b=ParamSplit(**parts),
        native_context=info.context_length,
        yarn=like.yarn if like and like.native_context == info.context_length else None,
        sampling=dict(like.sampling) if like else {},
        tool_call_parser=dict(like.tool_call_parser) if like else {},
        default_variant=variant_name,
        variants={variant_name: variant},
        sources=[str(info.path)],
    )


def file_choice(info: GgufInfo, catalog: Catalog, like: Model | None = None) -> ModelChoice:
    """The file as the planner's model, served under its stem; `like` (else the catalog
    model the file is recognised as) lends its sampling."""
    model = file_model(info, like or catalog_match(info, catalog))
    return ModelChoice(info.stem, model, model.default_variant, served=info.stem, gguf=info)


def template_note(info: GgufInfo) -> str | None:
    """What the agent can expect from the file's chat template, when it cannot take tools."""
    if info.chat_template is None:
        return (
            "this GGUF has no chat template (llama.cpp falls back to ChatML, which takes no "
            "tools): the agent will not be able to call tools; pass --chat-template-file."
        )
    if not info.template_takes_tools:
        return (
            "this model's chat template takes no tools: the agent will not be able to call "
            "tools (pass --chat-template-file with a template that renders them)."
        )
    return None
