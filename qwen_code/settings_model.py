"""The settings model: every key qwen-code reads, with Qwen Code's names.

Keys are camelCase in the JSON files (an alias generator maps them), unknown keys are
ignored so a Qwen Code settings file works here, and each field's docstring says what it
does. Where the values come from is `qwen_code.config`.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

ApprovalMode: TypeAlias = Literal["plan", "default", "auto-edit", "yolo"]

OutputFormat: TypeAlias = Literal["text", "json", "stream-json"]

Region: TypeAlias = Literal["intl", "us", "cn", "hk"]


class _Section(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )


class GenerationConfig(_Section):
    timeout: int = 120_000
    """Request timeout in milliseconds (for a stream: the longest wait for the next chunk)."""
    max_retries: int = 5
    """Retries on 429, 5xx, timeouts, dropped or stalled streams and connection errors."""
    max_retry_time: int = Field(default=180_000, ge=0)
    """Milliseconds after a request's first failure during which it is retried (all retries
    together, waits included); then the error is reported."""
    stream_stall_timeout: int = Field(default=60_000, ge=0)
    """Milliseconds without any data, once a streamed reply has started, before the stream
    counts as stalled and is retried; 0 turns stall detection off."""
    sampling_params: dict[str, Any] | None = None
    """temperature, top_p, top_k, repetition_penalty, max_tokens: replace the model defaults."""
    context_window_size: int | None = None
    custom_headers: dict[str, str] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict, alias="extra_body")
    enable_cache_control: bool = False
    """DashScope: mark the stable prompt prefix for explicit caching (cache_control)."""
    modalities: dict[str, bool] | None = None
    """What the model takes besides text, e.g. `{"image": true, "pdf": true}`; unset: the
    server's model card, else the catalog of known vision models decides."""


class ChatCompressionSettings(_Section):
    context_percentage_threshold: float = Field(default=0.7, ge=0, le=1)
    """Compress the history when a request would use this share of the context window;
    0 turns automatic compression off."""


class ModelSettings(_Section):
    name: str | None = None
    """Model id sent to the server."""
    max_session_turns: int = -1
    """Most model requests for one prompt; -1 means no limit."""
    generation_config: GenerationConfig = Field(default_factory=GenerationConfig)
    chat_compression: ChatCompressionSettings = Field(default_factory=ChatCompressionSettings)
    skip_loop_detection: bool = False
    """Turn off loop detection (repeated tool calls and repeated text)."""
    max_subagent_depth: int = Field(default=2, ge=1, le=100)
    """How deep subagents may nest: 1 = subagents cannot start subagents of their own."""
    max_concurrent_subagents: int = Field(default=4, ge=1, le=64)
    """Subagents of one agent that run at once; more calls wait for a free slot."""


class AuthSettings(_Section):
    api_key: str | None = None
    base_url: str | None = None
    dashscope_region: Region = "intl"
    """DashScope region used when only DASHSCOPE_API_KEY is set: intl, us, cn or hk."""


class FolderTrustSettings(_Section):
    enabled: bool = True
    """Ask before a folder's own configuration (`.qwen/settings.json`) may widen what
    qwen-code does there; read only from the user's settings. On by default."""


class SecuritySettings(_Section):
    auth: AuthSettings = Field(default_factory=AuthSettings)
    folder_trust: FolderTrustSettings = Field(default_factory=FolderTrustSettings)
    pass_credentials_to_commands: bool = False
    """Let commands qwen-code starts (shell tool, `!cmd`, custom-command `!{…}`) inherit
    the provider credentials (`OPENAI_API_KEY`, `DASHSCOPE_API_KEY`, ...); off by default."""


class ShellSettings(_Section):
    input_wait_seconds: float = Field(default=5.0, ge=0)
    """End a command that has been silent this long while blocked reading a terminal or
    a named pipe (it waits for input that never comes); 0 turns this off."""
    auto_background_seconds: float = Field(default=10.0, ge=0)
    """Move a foreground command that looks like a server or watcher to the background
    when it still runs after this long; 0 turns this off."""


SANDBOX_ALIASES: dict[str, str] = {
    "true": "workspace-write",
    "false": "off",
    "docker": "workspace-write",
    "podman": "workspace-write",
    "sandbox-exec": "workspace-write",
    "none": "off",
}
"""Qwen Code's `tools.sandbox` values (a boolean, or the container command it runs the
whole CLI in): qwen-code's per-command sandbox stands in for any of them."""


def sandbox_mode_value(value: object) -> object:
    """A `tools.sandbox` / `QWEN_SANDBOX` / `--sandbox` value in qwen-code's terms."""
    if isinstance(value, bool):
        return "workspace-write" if value else "off"
    if isinstance(value, str):
        text = value.strip().lower()
        return SANDBOX_ALIASES.get(text, {"1": "workspace-write", "0": "off"}.get(text, text))
    return value


class SandboxSettings(_Section):
    """The command sandbox (see docs/sandbox.md). Written as a mode string (`"read-only"`),
    a boolean (as in Qwen Code), or this object."""

    mode: Literal["auto", "off", "workspace-write", "read-only"] = "auto"
    """auto: workspace-write in yolo mode and for headless runs that let commands run
    without asking, off otherwise; workspace-write: the workspace and a private /tmp
    writable; read-only: only the private /tmp writable; off: no sandbox."""
    network: Literal["none", "all"] | list[str] = "none"
    """none (no network), all, or the domains sandboxed commands may reach through
    qwen-code's proxy (`pypi.org`, `*.npmjs.org`, `host:port`)."""
    hosts: dict[str, str] = Field(default_factory=dict)
    """Fixed addresses for allowed domains, as in /etc/hosts (a registry mirror)."""
    hidden_paths: list[str] = Field(default_factory=list)
    """More files or directories to hide from sandboxed commands (beyond ~/.ssh, ~/.aws,
    ~/.config/gcloud, ~/.docker, ~/.netrc, $QWEN_HOME, ~/.qwen and the like)."""

    @model_validator(mode="before")
    @classmethod
    def _from_short_form(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "mode" in data:
                data = {**data, "mode": sandbox_mode_value(data["mode"])}
            return data
        return {"mode": sandbox_mode_value(data)}


class ToolsSettings(_Section):
    approval_mode: ApprovalMode = "default"
    allowed: list[str] = Field(default_factory=list)
    """Tools (or `run_shell_command(prefix)` rules) that never need approval."""
    truncate_tool_output_threshold: int = 25_000
    truncate_tool_output_lines: int = 1_000
    shell: ShellSettings = Field(default_factory=ShellSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)


class PermissionsSettings(_Section):
    """Qwen Code's permission rules: `Tool` or `Tool(specifier)`; deny > ask > allow.
    Lists from every settings source (and flags) are merged, not replaced."""

    allow: list[str] = Field(default_factory=list)
    ask: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)


class ContextSettings(_Section):
    include_directories: list[str] = Field(default_factory=list)
    file_name: str | list[str] | None = None
    """Context file name(s) to load instead of QWEN.md and AGENTS.md."""

    def file_names(self) -> tuple[str, ...]:
        if self.file_name is None:
            return ("QWEN.md", "AGENTS.md")
        return (self.file_name,) if isinstance(self.file_name, str) else tuple(self.file_name)


class CheckpointingSettings(_Section):
    enabled: bool = True
    """Snapshot the workspace before the first change of each prompt (for /restore)."""
    include_shell: bool = False
    """Also snapshot before shell commands, not only before edits and writes."""


class GeneralSettings(_Section):
    vim_mode: bool = False
    """Vi key bindings in the interactive prompt."""
    checkpointing: CheckpointingSettings = Field(default_factory=CheckpointingSettings)
    session_recording: bool = True
    """Save every session's transcript under $QWEN_HOME/projects/ (for --continue)."""
    notifications: Literal["bell", "desktop", "off"] = "bell"
    """How the REPL tells you a long turn finished or a question waits: bell (the
    terminal's bell and notification escape sequences), desktop (`notify-send` /
    `osascript`, else bell) or off. Qwen Code's `terminalBell: false` means off."""
    terminal_bell: bool = True
    """Qwen Code's switch: false turns notifications off unless `notifications` is set."""
    notification_after_seconds: float = Field(default=30.0, ge=0)
    """A turn that ran longer than this (since you last answered a question) notifies
    when it ends; questions and approvals notify at once."""

    @model_validator(mode="before")
    @classmethod
    def _terminal_bell_off(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("terminalBell", data.get("terminal_bell")) is False
            and "notifications" not in data
        ):
            return {**data, "notifications": "off"}
        return data


class McpSettings(_Section):
    allowed: list[str] | None = None
    """Only these MCP servers (names or globs) may start."""
    excluded: list[str] = Field(default_factory=list)
    """These MCP servers (names or globs) never start; wins over `allowed`."""


class WebSearchProvider(_Section):
    """One `web_search` provider (Qwen Code's `webSearch.provider` entries)."""

    type: str
    """dashscope, tavily, brave or searxng."""
    api_key: str | None = None
    """The provider's key (default: TAVILY_API_KEY, BRAVE_API_KEY, the DashScope key)."""
    base_url: str | None = None
    """Where to send the query (a SearXNG instance; another endpoint for the others)."""
    model: str | None = None
    """DashScope: the model that searches (default qwen-plus)."""


class WebSearchSettings(_Section):
    """The `web_search` tool (see docs/web.md): which providers it may use."""

    provider: list[WebSearchProvider] = Field(default_factory=list)
    default: str | None = None
    """The provider type to use when several are available (default: the first)."""
    max_results: int = Field(default=5, ge=1, le=10)
    timeout: int = Field(default=30_000, ge=1)
    """Milliseconds to wait for the provider's answer."""


class ProxyBackend(_Section):
    """One OpenAI-compatible endpoint `qwen-code proxy` may route to (`proxy.backends.NAME`)."""

    base_url: str | None = None
    """Its base URL (…/v1); default: the agent's provider."""
    api_key: str | None = None
    """Its key; default: the agent's key when `baseUrl` is not set, else none."""
    model: str | None = None
    """The model a route naming only this backend uses."""
    max_output_tokens: int | None = Field(default=None, ge=1)
    """The most tokens a reply may ask for (default 65536)."""


class ProxyRoutes(_Section):
    """Which backend model serves which requests. Each value is "backend,model" or "model"
    (on the default backend, the agent's provider)."""

    default: str | None = None
    """Everything no other route takes (default: the agent's model)."""
    opus: str | None = None
    """Requests for a model whose name contains "opus"."""
    sonnet: str | None = None
    """... "sonnet"."""
    haiku: str | None = None
    """... "haiku" (Claude Code's background work: titles, summaries)."""
    background: str | None = None
    """Used for haiku requests when `haiku` is not set."""
    long_context: str | None = None
    """Requests whose prompt is over `longContextThreshold` tokens."""
    long_context_threshold: int = Field(default=60_000, ge=1)


class ProxySettings(_Section):
    """`qwen-code proxy`: the Anthropic Messages API for Claude Code (docs/proxy.md)."""

    port: int = Field(default=3456, ge=0, le=65535)
    host: str = "127.0.0.1"
    api_key: str | None = None
    """The key clients must send (x-api-key or Authorization: Bearer); required to listen
    on an address other than loopback."""
    routes: ProxyRoutes = Field(default_factory=ProxyRoutes)
    backends: dict[str, ProxyBackend] = Field(default_factory=dict)


class Settings(_Section):
    """All settings, as merged from every source."""

    general: GeneralSettings = Field(default_factory=GeneralSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    permissions: PermissionsSettings = Field(default_factory=PermissionsSettings)
    fast_model: str = ""
    """A smaller, faster model for side work (subagents with `model: fast`, web_fetch's
    page summaries); "" = the main model."""
    vision_model: str = ""
    """A model that takes images (e.g. `qwen3-vl-plus`), asked to describe an image when
    the main model cannot see it; "" = none."""
    web_search: WebSearchSettings = Field(default_factory=WebSearchSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    model_pricing: dict[str, Any] = Field(default_factory=dict)
    """Prices per model id (USD per 1M tokens), overriding the built-in table."""
    mcp_servers: dict[str, Any] = Field(default_factory=dict)
    """MCP servers by name (see docs/mcp.md); read by `qwen_code.mcp.config`."""
    mcp: McpSettings = Field(default_factory=McpSettings)
    hooks: dict[str, Any] = Field(default_factory=dict)
    """Hooks by event (Claude Code's and Qwen Code's format), merged; where each hook
    comes from is read by `qwen_code.hooks.load_hooks`."""
    disable_all_hooks: bool = False
    """`disableAllHooks`: no hook runs (their configuration stays)."""
    mcp_sources: dict[str, str] = Field(default_factory=dict, exclude=True)
    """Where each of `mcp_servers` came from: "user", "project" or "flag"."""
    mcp_config_files: list[str] = Field(default_factory=list, exclude=True)
    mcp_strict: bool = Field(default=False, exclude=True)
    """`--strict-mcp-config`: only the servers of `mcp_config_files` start."""
    tools_only: list[str] | None = Field(default=None, exclude=True)
    """`--tools`: the built-in tools the session keeps (None: all)."""
    flags: Any = Field(default=None, exclude=True)
    """The command-line `Flags` these settings were loaded with (hooks read `--settings`
    and `--setting-sources` from them)."""
    project_sources: bool = Field(default=True, exclude=True)
    """False when `--setting-sources` leaves the project out (its `.mcp.json` too)."""
    """`--mcp-config` files, read by `qwen_code.mcp.config`."""
    system_prompt: str | None = Field(default=None, exclude=True)
    """Replaces the shipped system prompt (from --system-prompt or QWEN_SYSTEM_MD)."""
    append_system_prompt: str | None = Field(default=None, exclude=True)
    """Added after the system prompt (--append-system-prompt)."""
    sources: list[str] = Field(default_factory=list, exclude=True)
    """Settings files that were read, for diagnostics."""
    api_key_source: str = Field(default="", exclude=True)
    notices: list[str] = Field(default_factory=list, exclude=True)
    """What loading left out and why (untrusted folder, withheld key): one line each, for
    the front end to show."""
    trust: Any = Field(default=None, exclude=True)
    """The project folder's `qwen_code.trust.Trust`."""
    project_settings_file: str | None = Field(default=None, exclude=True)
    """The project's `.qwen/settings.json` when there is one (applied or not)."""
    untrusted_keys: list[str] = Field(default_factory=list, exclude=True)
    """Project keys left out because the folder is not trusted (each gated section once)."""
