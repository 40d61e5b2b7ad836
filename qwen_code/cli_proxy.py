"""`qwen-code proxy` (serve the Anthropic Messages API), `proxy env`, `proxy run -- CMD`.

Only typer is imported here at module level; `qwen_code.proxy` (Starlette, uvicorn,
httpx) is imported inside the commands, so `--help` stays fast. `register(app)` adds the
group to the main app. Output goes to the streams of the `Environment` in the context.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from qwen_code.cli_help import HelpGroup
from qwen_code.environment import Environment, from_context
from qwen_code.errors import ConfigError

if TYPE_CHECKING:
    from qwen_code.proxy.routes import Router
    from qwen_code.proxy.server import ProxyServer
    from qwen_code.settings_model import Settings

PortOpt = Annotated[
    int | None, typer.Option("--port", help="Port to listen on (default 3456; run: a free one).")
]
HostOpt = Annotated[
    str | None,
    typer.Option("--host", help="Address to listen on (default 127.0.0.1; others need a key)."),
]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="The default backend (OpenAI-compatible URL).")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Send every request to this model ('backend,model')."),
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", help="Key clients must send (x-api-key or Bearer)."),
]
LogOpt = Annotated[
    str | None,
    typer.Option("--log", help="Append one line per request to this file (default: stderr)."),
]

_META = "qwen_code.cli_proxy"
PLACEHOLDER_TOKEN = "qwen-code-proxy"
"""ANTHROPIC_AUTH_TOKEN when the proxy has no key (Claude Code wants one set)."""


def _options(ctx: typer.Context, **given: Any) -> dict[str, Any]:
    """The group's options, overridden by the subcommand's own."""
    parent = ctx.meta.get(_META, {})
    return {k: given[k] if given.get(k) is not None else parent.get(k) for k in given}


def _settings(env: Environment) -> Settings:
    from qwen_code.config import load_settings

    return load_settings(cwd=env.cwd, home=env.home)


def _key(opts: dict[str, Any], settings: Settings) -> str | None:
    return opts["api_key"] or settings.proxy.api_key or None


def _host(opts: dict[str, Any], settings: Settings, key: str | None) -> str:
    from qwen_code.proxy.server import is_loopback

    host = opts["host"] or settings.proxy.host
    if not is_loopback(host) and not key:
        raise ConfigError(
            f"--host {host} lets other machines reach the proxy, and through it your model "
            "provider's key: set a key clients must send.",
            hint="Pass --api-key KEY or set proxy.apiKey in settings.json.",
        )
    return host


def _router(settings: Settings, opts: dict[str, Any], *, offline: bool = False) -> Router:
    """The routes; asks the default backend what it serves when nothing names a model
    (`offline`: then the default route's model is the word "default")."""
    import asyncio

    from qwen_code.proxy.routes import build_router, needs_served_models, served_models

    base_url, model = opts["base_url"], opts["model"]
    served = None
    if needs_served_models(settings, base_url, model):
        served = ["default"] if offline else asyncio.run(served_models(settings, base_url))
    return build_router(settings, base_url=base_url, model=model, served=served)


def _open_log(path: str | None, default: TextIO | None) -> TextIO | None:
    if not path:
        return default
    from pathlib import Path

    return Path(path).expanduser().open("a", encoding="utf-8", buffering=1)


def _server(
    env: Environment, opts: dict[str, Any], port: int, log_default: TextIO | None
) -> ProxyServer:
    from qwen_code.proxy.server import ProxyApp, ProxyServer

    settings = _settings(env)
    key = _key(opts, settings)
    host = _host(opts, settings, key)
    router = _router(settings, opts)
    app = ProxyApp(
        router,
        api_key=key,
        log=_open_log(opts["log"], log_default),
        cache_control=settings.model.generation_config.enable_cache_control,
    )
    return ProxyServer(app, host, port)


def ready_line(server: ProxyServer) -> str:
    """`qwen-code proxy listening on URL -> model at backend URL`, then the other routes."""
    router = server.proxy.router
    default = router.default
    lines = [
        f"qwen-code proxy listening on {server.url} -> {default.label()} at "
        f"{default.backend.base_url}"
    ]
    if router.override is None:
        for name, route in router.routes.items():
            if name != "default":
                lines.append(f"  {name} -> {route.label()} at {route.backend.base_url}")
    if server.proxy.api_key:
        lines.append("  clients must send the key (x-api-key or Authorization: Bearer)")
    return "\n".join(lines)


def client_env(url: str, key: str | None, router: Router) -> dict[str, str]:
    """The variables that point Claude Code at the proxy."""
    return {
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_AUTH_TOKEN": key or PLACEHOLDER_TOKEN,
        "ANTHROPIC_MODEL": router.default.model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": router.tier_model("opus"),
        "ANTHROPIC_DEFAULT_SONNET_MODEL": router.tier_model("sonnet"),
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": router.tier_model("haiku"),
        "DISABLE_TELEMETRY": "1",
    }


def proxy_main(
    ctx: typer.Context,
    port: PortOpt = None,
    host: HostOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: KeyOpt = None,
    log: LogOpt = None,
) -> int:
    """Serve the Anthropic Messages API on a Qwen model, for Claude Code and other
    Anthropic clients, until Ctrl+C. Routes and backends: proxy.* in settings
    (docs/proxy.md). Subcommands: env, run."""
    ctx.meta[_META] = {k: v for k, v in locals().items() if k != "ctx"}
    if ctx.invoked_subcommand:
        return 0
    env = from_context(ctx)
    opts = dict(ctx.meta[_META])
    settings_port = _settings(env).proxy.port
    server = _server(env, opts, settings_port if port is None else port, env.stderr)
    server.serve(lambda s: print(ready_line(s), file=env.stdout, flush=True))
    return 0


def proxy_env(
    ctx: typer.Context,
    port: PortOpt = None,
    host: HostOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: KeyOpt = None,
) -> int:
    """Print the `export` lines that point Claude Code at the proxy (eval "$(...)")."""
    env = from_context(ctx)
    opts = _options(ctx, port=port, host=host, base_url=base_url, model=model, api_key=api_key)
    settings = _settings(env)
    key = _key(opts, settings)
    host_name = opts["host"] or settings.proxy.host
    if host_name in ("0.0.0.0", "::", ""):
        host_name = "127.0.0.1"
    if ":" in host_name:
        host_name = f"[{host_name}]"
    port_number = settings.proxy.port if opts["port"] is None else opts["port"]
    url = f"http://{host_name}:{port_number}"
    variables = client_env(url, key, _router(settings, opts, offline=True))
    for name, value in variables.items():
        print(f"export {name}={shlex.quote(value)}", file=env.stdout)
    print("unset ANTHROPIC_API_KEY", file=env.stdout)
    return 0


def proxy_run(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None, typer.Argument(help="The command and its arguments.")
    ] = None,
    port: PortOpt = None,
    host: HostOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: KeyOpt = None,
    log: LogOpt = None,
) -> int:
    """Start the proxy (on a free port), run CMD with the variables of `proxy env`, stop
    the proxy when CMD exits and exit with its code: qwen-code proxy run -- claude."""
    import os
    import subprocess

    env = from_context(ctx)
    if not command:
        raise ConfigError("Name the command to run: qwen-code proxy run -- claude")
    opts = _options(
        ctx, port=port, host=host, base_url=base_url, model=model, api_key=api_key, log=log
    )
    server = _server(env, opts, 0 if opts["port"] is None else opts["port"], None)
    server.start()
    try:
        print(ready_line(server), file=env.stderr, flush=True)
        child = dict(os.environ)
        child.pop("ANTHROPIC_API_KEY", None)
        child.update(client_env(server.url, server.proxy.api_key, server.proxy.router))
        no_proxy = child.get("NO_PROXY") or child.get("no_proxy") or ""
        child["NO_PROXY"] = ",".join(p for p in (no_proxy, "127.0.0.1", "localhost") if p)
        try:
            process = subprocess.Popen(command, env=child)
        except OSError as exc:
            print(f"qwen-code: cannot run {command[0]}: {exc.strerror or exc}", file=env.stderr)
            return 127
        return _wait(process)
    finally:
        server.stop()


def _wait(process: Any) -> int:
    """The child's exit code. Ctrl+C reaches the child too (same terminal): wait for it;
    a second Ctrl+C terminates it."""
    interrupted = False
    while True:
        try:
            return int(process.wait())
        except KeyboardInterrupt:
            if interrupted:
                process.terminate()
            interrupted = True


def register(app: typer.Typer) -> None:
    """Add `proxy` (with env and run) to `app`."""
    proxy_app = typer.Typer(
        cls=HelpGroup,
        invoke_without_command=True,
        rich_markup_mode=None,
        help="An Anthropic Messages API on a Qwen model (Claude Code on Qwen3-Coder).",
    )
    proxy_app.callback()(proxy_main)
    proxy_app.command("env")(proxy_env)
    proxy_app.command(
        "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )(proxy_run)
    app.add_typer(proxy_app, name="proxy")
