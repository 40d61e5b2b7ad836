"""`qwen-code serve` (plan, start, stop, status) and `qwen-code cost`.

Only typer is imported here at module level; `qwen_code.serve` is imported inside the
commands. `register(app)` adds both to the main app. `python -m qwen_code.cli_serve ...`
runs them on their own. Output goes to the streams of the `Environment` that the caller
passes as the context object (`cli.main`), and user tables are read from its home.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from qwen_code.cli_help import HelpGroup
from qwen_code.environment import Environment, from_context

if TYPE_CHECKING:
    from qwen_code.llm.server_cards import ServerCard
    from qwen_code.serve.engines import EngineCommand, ServeOptions
    from qwen_code.serve.plan import Fit, Plan

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Catalog name (480b, 30b:q4_k_m), repo id, or a local FILE.gguf."
    ),
]
GpusOpt = Annotated[
    str,
    typer.Option(
        "--gpus", help="COUNTxTYPE per node (8xH200), cpu, or auto (nvidia-smi; else the CPU)."
    ),
]
GpuMemOpt = Annotated[
    float | None, typer.Option("--gpu-mem", help="GB per GPU, for other GPU types.")
]
ContextOpt = Annotated[
    str | None, typer.Option("--context", help="Tokens per sequence (262144, 128K, 1M).")
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", help="Sequences that must fit at once.")
]
KvOpt = Annotated[str, typer.Option("--kv-cache-dtype", help="auto (BF16) or fp8.")]
EngineOpt = Annotated[
    str | None, typer.Option("--engine", help="vllm, sglang or llama.cpp (default: all).")
]
NodesOpt = Annotated[int, typer.Option("--nodes", help="Machines, each with --gpus.")]
MemOpt = Annotated[
    float, typer.Option("--mem-fraction", help="Share of GPU memory the engine may use.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
GgufOpt = Annotated[
    str | None, typer.Option("--gguf", help="Local GGUF file (planned from its metadata).")
]
RamOpt = Annotated[
    float | None, typer.Option("--ram", help="CPU plan: GB of RAM to plan for (default: free).")
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", help="CPU plan: threads (default: physical cores).")
]


def _plan(args: dict[str, Any], env: Environment) -> Plan:
    """Resolve model and hardware (detecting GPUs for `auto`, else the CPU) and plan."""
    from qwen_code.serve.catalog import user_dir
    from qwen_code.serve.plan import make_plan
    from qwen_code.serve.request import build_request

    resolved = build_request(args, user_dir(env.home))
    out = env.stderr if args.get("json_output") else env.stdout
    for line in resolved.lines:
        print(line, file=out)
    return make_plan(resolved.request)


def serve_plan(
    ctx: typer.Context,
    model: ModelOpt = None,
    gpus: GpusOpt = "auto",
    gpu_mem: GpuMemOpt = None,
    context: ContextOpt = None,
    concurrency: ConcurrencyOpt = None,
    kv_cache_dtype: KvOpt = "auto",
    engine: EngineOpt = None,
    nodes: NodesOpt = 1,
    mem_fraction: MemOpt = 0.90,
    gguf: GgufOpt = None,
    ram: RamOpt = None,
    threads: ThreadsOpt = None,
    json_output: JsonOpt = False,
) -> int:
    """Size every engine and parallel layout (TP, DP, EP, PP) for a model on some GPUs:
    weights and KV cache per GPU, tokens that fit, concurrent sequences; rejected layouts
    say why. Without a GPU: the CPU plan (llama.cpp, RAM and threads)."""
    import json

    from qwen_code.serve.render import plan_json, plan_text

    env = from_context(ctx)
    plan = _plan(locals(), env)
    print(
        json.dumps(plan_json(plan), indent=2) if json_output else plan_text(plan), file=env.stdout
    )
    return 0 if plan.best else 1


def serve_main(
    ctx: typer.Context,
    model: ModelOpt = None,
    engine: EngineOpt = None,
    gpus: GpusOpt = "auto",
    gpu_mem: GpuMemOpt = None,
    context: ContextOpt = None,
    concurrency: ConcurrencyOpt = None,
    kv_cache_dtype: KvOpt = "auto",
    tp: Annotated[int | None, typer.Option("--tp", help="Only layouts with this TP.")] = None,
    dp: Annotated[int | None, typer.Option("--dp", help="Only layouts with this DP.")] = None,
    ep: Annotated[int | None, typer.Option("--ep", help="Only layouts with this EP.")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    served_name: Annotated[str | None, typer.Option("--served-name")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Require this key.")] = None,
    nodes: NodesOpt = 1,
    node_rank: Annotated[int, typer.Option("--node-rank", help="This machine's rank.")] = 0,
    head_address: Annotated[str | None, typer.Option("--head-address", help="HOST:PORT")] = None,
    mem_fraction: MemOpt = 0.90,
    gguf: GgufOpt = None,
    ram: RamOpt = None,
    threads: ThreadsOpt = None,
    chat_template_file: Annotated[str | None, typer.Option("--chat-template-file")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command only.")] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Leave it running.")] = False,
    ready_timeout: Annotated[float, typer.Option("--ready-timeout", help="Seconds.")] = 2400.0,
) -> int:
    """Start an engine for a model with the best plan (or the one --engine/--tp/--dp/--ep
    pick), print how to use it, and stop the whole engine on Ctrl+C.
    Subcommands: plan, stop, status."""
    if ctx.invoked_subcommand:
        return 0
    return _serve(locals(), from_context(ctx))


def _serve(args: dict[str, Any], env: Environment) -> int:
    from qwen_code.serve import engines
    from qwen_code.serve.engines import ServeOptions, build_command
    from qwen_code.serve.gguf_file import template_note
    from qwen_code.serve.request import fit_summary, pick_fit

    plan = _plan(args, env)
    fit = pick_fit(plan, args["engine"], args["tp"], args["dp"], args["ep"])
    opts = ServeOptions(
        host=args["host"],
        port=args["port"],
        served_name=args["served_name"],
        api_key=args["api_key"],
        head_address=args["head_address"],
        chat_template_file=args["chat_template_file"],
        gguf_file=args["gguf"],
    )
    command = build_command(plan, fit, opts)
    print(fit_summary(fit, plan), file=env.stdout)
    gguf = plan.request.choice.gguf
    note = template_note(gguf) if gguf and not opts.chat_template_file else None
    if note:
        print(f"Note: {note}", file=env.stdout)
    local = engines.gguf_path(plan, opts) is not None
    command, fallback = _locate(command, env.stdout, local_file=local)
    _print_commands(command, None if args["dry_run"] else args["node_rank"], env.stdout)
    if args["dry_run"]:
        return 0
    return _launch(plan, fit, command, opts, args, env, fallback=fallback)


def _locate(command: EngineCommand, out: TextIO, *, local_file: bool) -> tuple[EngineCommand, bool]:
    """llama.cpp: run llama-server from where it was found (PATH, this Python's scripts,
    site-packages), and say where; or say that llama-cpp-python's server stands in (True:
    it is installed and there is a local file for it)."""
    from qwen_code.serve import discover, engines

    if not any(n.argv[0] == discover.PROGRAM for n in command.nodes):
        return command, False
    found = discover.find_llama_server()
    if found is not None:
        print(found.describe(), file=out)
        return engines.with_program(command, discover.PROGRAM, found.argv0), False
    if not local_file or engines.missing_program(FALLBACK) is not None:
        return command, False
    print(
        "llama-server: not found; llama-cpp-python's server (python -m llama_cpp.server) "
        "will serve instead.",
        file=out,
    )
    return command, True


FALLBACK = ("python", "-m", "llama_cpp.server")


def _launch(
    plan: Plan,
    fit: Fit,
    command: EngineCommand,
    opts: ServeOptions,
    args: dict[str, Any],
    env: Environment,
    *,
    fallback: bool,
) -> int:
    from qwen_code.serve import engines, launch
    from qwen_code.serve.display import Display

    node = command.for_rank(args["node_rank"])
    if fallback:
        node = engines.llama_cpp_python(node, plan, fit, opts)
        print(f"Using llama-cpp-python's server:\n  {node.shell()}", file=env.stdout)
    options = launch.LaunchOptions.default(
        env.home,
        ready_timeout_s=args["ready_timeout"],
        detach=args["detach"],
        planned_kv_tokens=fit.kv_tokens,
        card=_card(plan, fit, command, opts, fallback=fallback),
    )
    return launch.run(command, node, args["port"], options, Display(env.stdout))


def _card(
    plan: Plan, fit: Fit, command: EngineCommand, opts: ServeOptions, *, fallback: bool
) -> ServerCard:
    """What the agent should know of this engine that it may not say itself (see
    `qwen_code.llm.server_cards`): whether the GGUF's chat template takes tools."""
    from qwen_code.llm.server_cards import ServerCard

    gguf = plan.request.choice.gguf
    tools = gguf.template_takes_tools if gguf and not opts.chat_template_file else None
    return ServerCard(
        base_url=command.base_url,
        model=command.served_name,
        engine="llama-cpp-python" if fallback else command.engine,
        tools=tools,
        context_window=fit.context or None,
    )


def _print_commands(command: EngineCommand, rank: int | None, out: TextIO) -> None:
    from qwen_code.serve.engines import INSTALL, missing_program

    nodes = command.nodes if rank is None else (command.for_rank(rank),)
    for node in nodes:
        title = "Command" if len(command.nodes) == 1 else f"Node {node.rank}"
        if len(command.nodes) > 1:
            title += " (head, serves the API)" if node.rank == 0 else " (worker)"
        print(f"{title}:", file=out)
        for before in node.before:
            print(f"  {' '.join(before)}", file=out)
        print(f"  {node.shell(multiline=True)}", file=out)
    for note in command.notes:
        print(f"Note: {note}", file=out)
    if rank is None:
        missing = {m for n in nodes for a in (*n.before, n.argv) if (m := missing_program(a))}
        for name in sorted(missing):
            print(f"Note: {name} is not installed here ({INSTALL.get(name, name)}).", file=out)
    print(
        f"Clients: OPENAI_BASE_URL={command.base_url} OPENAI_MODEL={command.served_name}", file=out
    )


def serve_stop(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="Only this one.")] = None,
) -> int:
    """Stop detached engines (all of them, or the one on --port)."""
    from qwen_code.serve import detached, launch

    env = from_context(ctx)
    run_dir = launch.LaunchOptions.default(env.home).run_dir
    for message in detached.stop_detached(run_dir, port, cards_home=env.home):
        print(message, file=env.stdout)
    return 0


def serve_status(ctx: typer.Context) -> int:
    """List detached engines: model, pid, health, uptime, log."""
    from qwen_code.serve import detached, launch

    env = from_context(ctx)
    for line in detached.status_lines(launch.LaunchOptions.default(env.home).run_dir):
        print(line, file=env.stdout)
    return 0


def cost(
    ctx: typer.Context,
    tokens_per_day: Annotated[str, typer.Option("--tokens-per-day", help="e.g. 50M.")],
    input_share: Annotated[float, typer.Option("--input-share")] = 0.9,
    cache_hit: Annotated[float, typer.Option("--cache-hit", help="Cached input share.")] = 0.6,
    context: Annotated[str, typer.Option("--context", help="Input tokens per request.")] = "64K",
    model: Annotated[str, typer.Option("--model", "-m")] = "480b:fp8",
    gpus: Annotated[str, typer.Option("--gpus", help="COUNTxTYPE, one node.")] = "8xH100",
    gpu_mem: GpuMemOpt = None,
    gpu_price: Annotated[float | None, typer.Option("--gpu-price", help="$/GPU-hour.")] = None,
    utilization: Annotated[float, typer.Option("--utilization")] = 0.6,
    power_price: Annotated[float | None, typer.Option("--power-price", help="$/kWh.")] = None,
    hardware_price: Annotated[float | None, typer.Option("--hardware-price")] = None,
    amortize_years: Annotated[float, typer.Option("--amortize-years")] = 3.0,
    overhead: Annotated[float, typer.Option("--overhead", help="e.g. 0.3 for 30%.")] = 0.0,
    kv_cache_dtype: KvOpt = "auto",
    decode_tok_s: Annotated[float | None, typer.Option("--decode-tok-s")] = None,
    prefill_tok_s: Annotated[float | None, typer.Option("--prefill-tok-s")] = None,
    api_model: Annotated[list[str] | None, typer.Option("--api-model")] = None,
    json_output: JsonOpt = False,
) -> int:
    """Self-hosting against the DashScope API for a workload: cost per 1M tokens and per
    day, the break-even volume, and the assumptions. --power-price: owned hardware."""
    return _cost(locals(), from_context(ctx))


def _cost(args: dict[str, Any], env: Environment) -> int:
    import json

    from qwen_code.serve.catalog import Catalog, parse_gpus, parse_tokens, user_dir
    from qwen_code.serve.cost import CostRequest, compare
    from qwen_code.serve.render import cost_json, cost_text

    keys = ("input_share", "cache_hit", "gpu_price", "utilization", "power_price")
    keys += ("hardware_price", "amortize_years", "overhead", "kv_cache_dtype")
    report = compare(
        CostRequest(
            tokens_per_day=parse_tokens(args["tokens_per_day"], binary=False),
            context=parse_tokens(args["context"], binary=True),
            choice=Catalog.load(user_dir(env.home)).resolve(args["model"]),
            gpus=parse_gpus(args["gpus"], args["gpu_mem"]),
            decode_tok_s=args["decode_tok_s"],
            prefill_tok_s=args["prefill_tok_s"],
            api_models=tuple(args["api_model"] or ()),
            **{k: args[k] for k in keys},
        )
    )
    text = json.dumps(cost_json(report), indent=2) if args["json_output"] else cost_text(report)
    print(text, file=env.stdout)
    return 0


def register(app: typer.Typer) -> None:
    """Add `serve` (with plan, stop, status) and `cost` to `app`."""
    serve_app = typer.Typer(
        cls=HelpGroup,
        invoke_without_command=True,
        rich_markup_mode=None,
        help="Plan, start and stop a local inference engine for Qwen3-Coder.",
    )
    serve_app.callback()(serve_main)
    serve_app.command("plan")(serve_plan)
    serve_app.command("stop")(serve_stop)
    serve_app.command("status")(serve_status)
    app.add_typer(serve_app, name="serve")
    app.command("cost")(cost)


def main(argv: list[str] | None = None) -> int:
    """`python -m qwen_code.cli_serve serve|cost ...`."""
    from qwen_code.errors import QwenCodeError

    env = Environment.detect()

    app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)

    @app.callback()
    def _group() -> None:
        """qwen-code serving commands."""

    register(app)
    try:
        result = app(args=sys.argv[1:] if argv is None else argv, standalone_mode=False, obj=env)
    except QwenCodeError as exc:
        print(f"qwen-code: {exc}", file=env.stderr)
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except KeyboardInterrupt:
        return 130
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
