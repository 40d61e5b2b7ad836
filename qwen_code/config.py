"""Settings: one model, merged in one place.

Precedence, lowest first: defaults < user `$QWEN_HOME/settings.json` < project
`.qwen/settings.json` < environment < flags. Keys use Qwen Code's names (camelCase in
the JSON files) so a Qwen Code settings file works here. Environment variables are
read only in this module.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from qwen_code.errors import ConfigError, CredentialsError

ApprovalMode: TypeAlias = Literal["plan", "default", "auto-edit", "yolo"]
OutputFormat: TypeAlias = Literal["text", "json", "stream-json"]
Region: TypeAlias = Literal["intl", "us", "cn", "hk"]

DASHSCOPE_URLS: dict[str, str] = {
    "intl": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    "us": "https://dashscope-us.aliyuncs.com/compatible-mode/v1",
    "cn": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "hk": "https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1",
}
DEFAULT_DASHSCOPE_MODEL = "qwen3-coder-plus"
NO_KEY = "no-key"
"""Sent as the API key to local servers that need none (the openai client wants one)."""


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


class ToolsSettings(_Section):
    approval_mode: ApprovalMode = "default"
    allowed: list[str] = Field(default_factory=list)
    """Tools (or `run_shell_command(prefix)` rules) that never need approval."""
    truncate_tool_output_threshold: int = 25_000
    truncate_tool_output_lines: int = 1_000
    shell: ShellSettings = Field(default_factory=ShellSettings)


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


class Settings(_Section):
    """All settings, as merged from every source."""

    general: GeneralSettings = Field(default_factory=GeneralSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    permissions: PermissionsSettings = Field(default_factory=PermissionsSettings)
    model_pricing: dict[str, Any] = Field(default_factory=dict)
    """Prices per model id (USD per 1M tokens), overriding the built-in table."""
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


@dataclass(slots=True, kw_only=True)
class Flags:
    """Command-line values that override settings; None means "not given"."""

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    approval_mode: ApprovalMode | None = None
    yolo: bool = False
    max_session_turns: int | None = None
    include_directories: list[str] = field(default_factory=list)
    allowed_tools: list[str] = field(default_factory=list)
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    trust_workspace: bool = False
    """`--trust-workspace`: trust the project folder for this run (headless CI)."""


def qwen_home(env: Mapping[str, str] | None = None) -> Path:
    """Where user settings and state live: `$QWEN_HOME`, else `~/.qwen`."""
    env = os.environ if env is None else env
    home = env.get("QWEN_HOME")
    return Path(home).expanduser() if home else Path.home() / ".qwen"


def find_project_settings(cwd: Path, home: Path) -> Path | None:
    """The project's `.qwen/settings.json`: at the project root (the git root, or the
    working directory outside git) only, never in a folder above it, never the user's home
    (whose `.qwen` holds user settings, not a project's)."""
    root = project_root(cwd)
    if root == Path.home().resolve():
        return None
    candidate = root / ".qwen" / "settings.json"
    if candidate.parent.resolve() == home.resolve():
        return None
    return candidate if candidate.is_file() else None


def read_settings_file(path: Path) -> dict[str, Any]:
    """Parse one settings file; a broken file is an error naming the file (exit 52)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read settings file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Settings file {path} is broken: it is not UTF-8 text (byte {exc.start})."
        ) from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"Settings file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
            f"{exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise ConfigError(f"Settings file {path} is broken: it nests too deeply.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Settings file {path} must hold a JSON object.")
    if _depth_exceeds(data, MAX_SETTINGS_DEPTH):
        raise ConfigError(f"Settings file {path} is broken: it nests too deeply.")
    return data


MAX_SETTINGS_DEPTH = 64
"""Real settings nest a handful of levels; far deeper is a broken (or hostile) file."""


def _depth_exceeds(data: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return False


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `override` into a copy of `base`; nested objects merge, other values replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The settings the environment sets, and the name of the variable holding the key."""
    auth: dict[str, Any] = {}
    key_source = ""
    base_url = env.get("OPENAI_BASE_URL")
    if base_url:
        auth["baseUrl"] = base_url
    openai_key, dashscope_key = env.get("OPENAI_API_KEY"), env.get("DASHSCOPE_API_KEY")
    if dashscope_key and (not openai_key or not base_url or _is_dashscope(base_url)):
        auth["apiKey"], key_source = dashscope_key, "DASHSCOPE_API_KEY"
    elif openai_key:
        auth["apiKey"], key_source = openai_key, "OPENAI_API_KEY"
    if env.get("DASHSCOPE_REGION"):
        auth["dashscopeRegion"] = env["DASHSCOPE_REGION"].lower()
    layer: dict[str, Any] = {"security": {"auth": auth}} if auth else {}
    model = env.get("QWEN_MODEL") or env.get("OPENAI_MODEL")
    if model:
        layer["model"] = {"name": model}
    return layer, key_source


def _flag_layer(flags: Flags) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    auth = {k: v for k, v in (("baseUrl", flags.base_url), ("apiKey", flags.api_key)) if v}
    if auth:
        layer["security"] = {"auth": auth}
    model: dict[str, Any] = {}
    if flags.model:
        model["name"] = flags.model
    if flags.max_session_turns is not None:
        model["maxSessionTurns"] = flags.max_session_turns
    if model:
        layer["model"] = model
    mode = "yolo" if flags.yolo else flags.approval_mode
    if mode:
        layer["tools"] = {"approvalMode": mode}
    return layer


def load_settings(
    flags: Flags | None = None, *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Merge every source into one `Settings`, in the documented precedence. The project's
    settings apply in full only in a trusted folder (`qwen_code.trust`)."""
    flags = flags or Flags()
    env = os.environ if env is None else env
    cwd = (cwd or Path.cwd()).resolve()
    home = qwen_home(env)
    user_path = home / "settings.json"
    user = read_settings_file(user_path) if user_path.is_file() else {}
    project = _project_layer(flags, cwd, home, env, user)
    env_layer, key_source = _env_layer(env)
    layers = [user, project.applied, env_layer, _flag_layer(flags)]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    for keys in _UNION_LISTS:
        _set_path(merged, keys, _union(layers, keys))
    sources = [str(p) for p in (user_path, project.path) if p is not None and p.is_file()]
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"Invalid settings ({', '.join(sources) or 'flags'}):\n{exc}") from exc
    settings.sources = sources
    settings.trust = project.trust
    settings.project_settings_file = str(project.path) if project.path else None
    settings.notices = project.notices
    settings.untrusted_keys = [] if project.trust.granted else project.reported
    settings.api_key_source = _key_source(flags, key_source, settings)
    _bind_credentials(settings, flags, env_key=bool(key_source), project=project.applied)
    settings.system_prompt = flags.system_prompt or _system_md(env, cwd)
    settings.append_system_prompt = flags.append_system_prompt
    settings.tools.allowed = [*settings.tools.allowed, *flags.allowed_tools]
    settings.context.include_directories = [
        *settings.context.include_directories,
        *flags.include_directories,
    ]
    return settings


_UNION_LISTS: tuple[tuple[str, ...], ...] = (
    ("tools", "allowed"),
    ("permissions", "allow"),
    ("permissions", "ask"),
    ("permissions", "deny"),
    ("context", "includeDirectories"),
)
"""Lists that add up across settings files (rules from the user and the project both
count) instead of the project's list replacing the user's."""


def _union(layers: Any, keys: tuple[str, ...]) -> list[Any]:
    found: list[Any] = []
    for layer in layers:
        node: Any = layer
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        for item in node if isinstance(node, list) else ():
            if item not in found:
                found.append(item)
    return found


def _set_path(data: dict[str, Any], keys: tuple[str, ...], value: list[Any]) -> None:
    if not value:
        return
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        node[key] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[keys[-1]] = value


@dataclass(slots=True)
class _ProjectLayer:
    path: Path | None
    applied: dict[str, Any]
    trust: Any
    notices: list[str]
    reported: list[str]


def _project_layer(
    flags: Flags, cwd: Path, home: Path, env: Mapping[str, str], user: dict[str, Any]
) -> _ProjectLayer:
    """The project's settings as far as the folder's trust lets them apply."""
    from qwen_code import trust as folder_trust

    enabled = _trust_enabled(user)
    trust = folder_trust.folder_trust(
        project_root(cwd), home=home, env=env, enabled=enabled, opt_in=flags.trust_workspace
    )
    path = find_project_settings(cwd, home)
    if path is None:
        return _ProjectLayer(None, {}, trust, [], [])
    applied, dropped = folder_trust.split_project_settings(
        read_settings_file(path), trusted=trust.granted
    )
    reported = _reportable(dropped)
    notices = [_ignored_notice(key, path, trust.granted) for key in reported]
    return _ProjectLayer(path, applied, trust, notices, reported)


def _trust_enabled(user: dict[str, Any]) -> bool:
    value = user.get("security", {}) if isinstance(user.get("security"), dict) else {}
    value = value.get("folderTrust", {}) if isinstance(value.get("folderTrust"), dict) else {}
    return value.get("enabled", True) is not False


def _reportable(dropped: list[str]) -> list[str]:
    """The dropped keys worth a notice, each gated section once (`mcpServers`, not every
    server's every field); keys qwen-code would ignore anyway are not reported."""
    from qwen_code.trust import GATED_KEYS

    seen: list[str] = []
    for key in dropped:
        prefix = next((g for g in GATED_KEYS if key == g or key.startswith(g + ".")), None)
        if prefix is None and not _known_key(tuple(key.split("."))):
            continue
        shown = prefix or key
        if shown not in seen:
            seen.append(shown)
    return seen


def _known_key(path: tuple[str, ...]) -> bool:
    """True when `Settings` has this (camelCase) key path."""
    model: Any = Settings
    for part in path:
        fields = {(f.alias or name): f for name, f in model.model_fields.items()}
        field_info = fields.get(part)
        if field_info is None:
            return False
        annotation = field_info.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return True  # a leaf, or a free-form dict (prices, headers)
        model = annotation
    return True


def _ignored_notice(key: str, path: Path, trusted: bool) -> str:
    if trusted:
        return f"ignoring {key} from {path}: only your own settings can set it."
    return (
        f"ignoring {key} from {path}: this folder is not trusted "
        f"(trust it with /trust in an interactive session, or pass --trust-workspace)."
    )


def _auth_value(layer: dict[str, Any], key: str) -> Any:
    security = layer.get("security")
    auth = security.get("auth") if isinstance(security, dict) else None
    return auth.get(key) if isinstance(auth, dict) else None


def _bind_credentials(
    settings: Settings, flags: Flags, *, env_key: bool, project: dict[str, Any]
) -> None:
    """A credential never follows a base URL from a less trusted source than itself.

    The user's key (flags, environment, user settings) goes to a base URL that a
    project's settings chose only when that URL is the key's own provider (DashScope for a
    DashScope key); otherwise the request goes out without it, and a notice says so."""
    auth = settings.security.auth
    url_from_project = (
        not flags.base_url
        and _auth_value(project, "baseUrl") is not None
        and auth.base_url == _auth_value(project, "baseUrl")
    )
    key_from_project = (
        not flags.api_key and not env_key and _auth_value(project, "apiKey") is not None
    )
    if not url_from_project or key_from_project or not auth.api_key or not auth.base_url:
        return
    if _is_dashscope(auth.base_url) and settings.api_key_source != "OPENAI_API_KEY":
        return
    settings.notices.append(
        f"not sending your API key ({settings.api_key_source}) to {auth.base_url}: that "
        f"address comes from the project's settings ({settings.project_settings_file}). Set "
        "the base URL in your own settings, OPENAI_BASE_URL or --base-url to send it there."
    )
    auth.api_key = None
    settings.api_key_source = "(withheld)"


def _system_md(env: Mapping[str, str], cwd: Path) -> str | None:
    """`QWEN_SYSTEM_MD`: `1`/`true` → `.qwen/system.md` of the project, a path → that file,
    `0`/`false`/unset → the shipped prompt."""
    value = (env.get("QWEN_SYSTEM_MD") or "").strip()
    if value.lower() in ("", "0", "false"):
        return None
    if value.lower() in ("1", "true"):
        path = project_root(cwd) / ".qwen" / "system.md"
    else:
        path = Path(value).expanduser()
        path = path if path.is_absolute() else cwd / path
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"QWEN_SYSTEM_MD points to {path}, which cannot be read ({exc.strerror}). "
            "Create the file, or unset QWEN_SYSTEM_MD to use the built-in prompt."
        ) from exc


def _key_source(flags: Flags, env_source: str, settings: Settings) -> str:
    if flags.api_key:
        return "--api-key"
    if env_source:
        return env_source
    return "security.auth.apiKey in settings.json" if settings.security.auth.api_key else ""


_ENDPOINT_SUFFIX = re.compile(r"/(chat/completions|completions|models)/*$", re.IGNORECASE)


def normalize_base_url(url: str) -> str:
    """The base URL without surrounding space, trailing slashes, or an endpoint path pasted
    with it (`…/v1/chat/completions` → `…/v1`). A missing `/v1` is not added here: the
    client adds it after a 404 (servers differ in whether they need it)."""
    return _ENDPOINT_SUFFIX.sub("", url.strip()).rstrip("/")


def _is_dashscope(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host.endswith(".aliyuncs.com") and "dashscope" in host


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """The endpoint to talk to, resolved from settings."""

    base_url: str
    api_key: str
    model: str | None
    """None when nothing names a model: ask the server which one it serves."""
    api_key_source: str
    is_dashscope: bool


MISSING_CREDENTIALS = """No model provider is configured. Set one of:
  DASHSCOPE_API_KEY=sk-...            Alibaba Cloud Model Studio (DashScope); region with
                                      DASHSCOPE_REGION=intl|us|cn|hk (default intl)
  OPENAI_BASE_URL=http://host:8000/v1 any OpenAI-compatible server (vLLM, SGLang, llama.cpp,
                                      Ollama, OpenRouter); add OPENAI_API_KEY if it needs a key
  OPENAI_API_KEY=sk-...               a key for DashScope, or for the server in OPENAI_BASE_URL
or pass --api-key / --base-url, or set security.auth.apiKey / baseUrl in {home}/settings.json."""


def resolve_provider(settings: Settings, *, home: Path | None = None) -> Provider:
    """Pick base URL, key and model. Any one credential (a key or a base URL) suffices."""
    auth = settings.security.auth
    if not auth.api_key and not auth.base_url:
        raise CredentialsError(MISSING_CREDENTIALS.format(home=home or qwen_home()))
    base_url = normalize_base_url(auth.base_url or DASHSCOPE_URLS[auth.dashscope_region])
    dashscope = _is_dashscope(base_url)
    model = settings.model.name or (DEFAULT_DASHSCOPE_MODEL if dashscope else None)
    return Provider(
        base_url=base_url,
        api_key=auth.api_key or NO_KEY,
        model=model,
        api_key_source=settings.api_key_source or "(no key set)",
        is_dashscope=dashscope,
    )


SettingsScope: TypeAlias = Literal["project", "user"]


def project_root(cwd: Path) -> Path:
    """The git root above `cwd`, or `cwd` itself outside a repository.

    A `.git` owned by another user does not count (git itself calls such a repository
    "dubious"): otherwise anyone who can write `/tmp/.git` would make `/tmp` the project
    of every folder below it."""
    for directory in (cwd, *cwd.parents):
        marker = directory / ".git"
        if marker.exists() and _owned_by_us(marker):
            return directory
    return cwd


def _owned_by_us(path: Path) -> bool:
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return True
    try:
        return path.stat().st_uid == getuid()
    except OSError:
        return False


def project_id(cwd: Path) -> str:
    """A directory name for per-project state under `$QWEN_HOME/projects/`."""
    root = str(project_root(cwd).resolve())
    return re.sub(r"[^A-Za-z0-9._-]", "-", root).strip("-") or "root"


def settings_path(scope: SettingsScope, *, cwd: Path, env: Mapping[str, str] | None = None) -> Path:
    """The file a scope's settings are written to."""
    home = qwen_home(env)
    if scope == "user":
        return home / "settings.json"
    return find_project_settings(cwd, home) or project_root(cwd) / ".qwen" / "settings.json"


def update_settings_file(path: Path, keys: tuple[str, ...], update: Any) -> None:
    """Change one value in a settings file, keeping everything else, atomically.

    `update` receives the current value (or None) and returns the new one.
    """
    from qwen_code.tools.fileio import atomic_write

    data = read_settings_file(path) if path.is_file() else {}
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        node[key] = child = child if isinstance(child, dict) else {}
        node = child
    node[keys[-1]] = update(node.get(keys[-1]))
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, text.encode("utf-8"))


def add_allow_rule(
    rule: str, scope: SettingsScope, *, cwd: Path, env: Mapping[str, str] | None = None
) -> Path:
    """Persist an allow rule (`permissions.allow`, Qwen Code's current key) for the project
    or the user; returns the file."""
    path = settings_path(scope, cwd=cwd, env=env)

    def add(current: Any) -> list[Any]:
        rules = list(current) if isinstance(current, list) else []
        return rules if rule in rules else [*rules, rule]

    update_settings_file(path, ("permissions", "allow"), add)
    return path
