"""Settings: one model, merged in one place, and the provider they resolve to.

Precedence, lowest first: defaults < user `$QWEN_HOME/settings.json` < project
`.qwen/settings.json` (as far as the folder is trusted, `qwen_code.trust`) < environment <
flags. Keys use Qwen Code's names (camelCase in the JSON files) so a Qwen Code settings
file works here. Environment variables are read only in this module. The model is in
`settings_model`, the files in `settings_files`; both are re-exported here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qwen_code import trust as folder_trust
from qwen_code.errors import ConfigError, CredentialsError
from qwen_code.llm.dashscope import is_dashscope
from qwen_code.settings_files import SettingsScope as SettingsScope
from qwen_code.settings_files import add_allow_rule as add_allow_rule
from qwen_code.settings_files import deep_merge, qwen_home, read_settings_file
from qwen_code.settings_files import find_project_settings as find_project_settings
from qwen_code.settings_files import project_id as project_id
from qwen_code.settings_files import project_root as project_root
from qwen_code.settings_files import settings_path as settings_path
from qwen_code.settings_files import update_settings_file as update_settings_file
from qwen_code.settings_model import ApprovalMode, Settings, sandbox_mode_value
from qwen_code.settings_model import OutputFormat as OutputFormat
from qwen_code.settings_model import Region as Region

DASHSCOPE_URLS: dict[str, str] = {
    "intl": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    "us": "https://dashscope-us.aliyuncs.com/compatible-mode/v1",
    "cn": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "hk": "https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1",
}
DEFAULT_DASHSCOPE_MODEL = "qwen3-coder-plus"
NO_KEY = "no-key"
"""The API key of a local server that needs none (servers started with a key check still
get a bearer token, as OpenAI clients send one)."""


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
    sandbox: str | None = None
    """`--sandbox MODE`: auto, off, workspace-write or read-only."""
    mcp_config: list[str] = field(default_factory=list)
    """`--mcp-config FILE`: more MCP servers (`{"mcpServers": {...}}` files)."""
    allowed_mcp_server_names: list[str] | None = None
    """`--allowed-mcp-server-names`: only these configured MCP servers start."""
    json_schema: str | None = None
    """`--json-schema`: JSON text or `@file` (headless; see `ui.run_limits`)."""
    max_budget_usd: float | None = None
    max_wall_time: str | None = None
    """`--max-wall-time` as given (`90`, `30s`, `5m`, `1.5h`)."""
    max_tool_calls: int | None = None
    disallowed_tools: list[str] = field(default_factory=list)
    """`--disallowed-tools`: deny rules, one per entry."""
    tools: list[str] | None = None
    """`--tools`: only these built-in tools (names or Claude Code's); [] for none."""
    settings: str | None = None
    """`--settings`: a settings file, or settings as JSON text, above the files."""
    setting_sources: list[str] | None = None
    """`--setting-sources`: which settings files to read (user, project, local)."""
    strict_mcp_config: bool = False
    """`--strict-mcp-config`: only the MCP servers of `--mcp-config`."""

    def run_limits_given(self) -> list[str]:
        """The headless-only limit flags given, by name."""
        given = {
            "--json-schema": self.json_schema,
            "--max-budget-usd": self.max_budget_usd,
            "--max-wall-time": self.max_wall_time,
            "--max-tool-calls": self.max_tool_calls,
        }
        return [name for name, value in given.items() if value is not None]


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The settings the environment sets, and the name of the variable holding the key."""
    auth: dict[str, Any] = {}
    key_source = ""
    base_url = env.get("OPENAI_BASE_URL")
    if base_url:
        auth["baseUrl"] = base_url
    openai_key, dashscope_key = env.get("OPENAI_API_KEY"), env.get("DASHSCOPE_API_KEY")
    if dashscope_key and (not openai_key or not base_url or is_dashscope(base_url)):
        auth["apiKey"], key_source = dashscope_key, "DASHSCOPE_API_KEY"
    elif openai_key:
        auth["apiKey"], key_source = openai_key, "OPENAI_API_KEY"
    if env.get("DASHSCOPE_REGION"):
        auth["dashscopeRegion"] = env["DASHSCOPE_REGION"].lower()
    layer: dict[str, Any] = {"security": {"auth": auth}} if auth else {}
    model = env.get("QWEN_MODEL") or env.get("OPENAI_MODEL")
    if model:
        layer["model"] = {"name": model}
    if env.get("QWEN_SANDBOX"):
        layer["tools"] = {"sandbox": {"mode": sandbox_mode_value(env["QWEN_SANDBOX"])}}
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
    tools: dict[str, Any] = {"approvalMode": mode} if mode else {}
    if flags.sandbox:
        tools["sandbox"] = {"mode": sandbox_mode_value(flags.sandbox)}
    if tools:
        layer["tools"] = tools
    if flags.disallowed_tools:
        layer["permissions"] = {"deny": list(flags.disallowed_tools)}
    return layer


def load_settings(
    flags: Flags | None = None,
    *,
    cwd: Path | None = None,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge every source into one `Settings`, in the documented precedence. The project's
    settings apply in full only in a trusted folder (`qwen_code.trust`).

    Front ends pass the `cwd` and `home` of their `Environment`; for other callers they
    default to the process's working directory and `$QWEN_HOME` of `env`."""
    flags = flags or Flags()
    env = os.environ if env is None else env
    cwd = (cwd or Path.cwd()).resolve()
    home = home if home is not None else qwen_home(env)
    user_path = home / "settings.json"
    read_user, read_project = _sources_read(flags.setting_sources)
    user = read_settings_file(user_path) if read_user and user_path.is_file() else {}
    project = folder_trust.project_layer(cwd, home, env, user, opt_in=flags.trust_workspace)
    if not read_project:
        project = dataclasses.replace(project, path=None, applied={}, notices=[], reported=[])
    env_layer, key_source = _env_layer(env)
    given = _settings_flag(flags.settings, cwd)
    layers = [user, project.applied, given, env_layer, _flag_layer(flags)]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, _sandbox_as_object(layer))
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
    settings.mcp_sources = _mcp_sources(user, project.applied)
    settings.mcp_config_files = list(flags.mcp_config)
    if flags.allowed_mcp_server_names is not None:
        settings.mcp.allowed = list(flags.allowed_mcp_server_names)
    settings.tools.allowed = [*settings.tools.allowed, *flags.allowed_tools]
    settings.tools_only = flags.tools
    settings.mcp_strict = flags.strict_mcp_config
    settings.project_sources = read_project
    settings.flags = flags
    settings.context.include_directories = [
        *settings.context.include_directories,
        *flags.include_directories,
    ]
    return settings


def _sources_read(sources: list[str] | None) -> tuple[bool, bool]:
    """`--setting-sources`: whether the user's file and the project's are read (Claude
    Code's `local` is the project's own file here, as is `project`)."""
    if sources is None:
        return True, True
    return "user" in sources, bool({"project", "local"} & set(sources))


def _settings_flag(value: str | None, cwd: Path) -> dict[str, Any]:
    """`--settings`: JSON text (starts with `{`) or a settings file, relative to `cwd`."""
    if value is None:
        return {}
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--settings: not valid JSON ({exc.msg}).") from None
        if not isinstance(data, dict):
            raise ConfigError("--settings: the JSON must be an object.")
        return data
    path = (cwd / Path(text).expanduser()).resolve()
    if not path.is_file():
        raise ConfigError(f"--settings: no such file: {path}")
    return read_settings_file(path)


def _mcp_sources(user: dict[str, Any], project: dict[str, Any]) -> dict[str, str]:
    """Which file each MCP server comes from (the project's wins for a shared name)."""
    sources: dict[str, str] = {}
    for source, layer in (("user", user), ("project", project)):
        servers = layer.get("mcpServers")
        for name in servers if isinstance(servers, dict) else ():
            sources[name] = source
    return sources


def _sandbox_as_object(layer: dict[str, Any]) -> dict[str, Any]:
    """`tools.sandbox` written as a string or boolean, as an object, so that one source's
    mode and another's network policy merge instead of replacing each other."""
    tools = layer.get("tools")
    if not isinstance(tools, dict) or "sandbox" not in tools:
        return layer
    if isinstance(tools["sandbox"], dict):
        return layer
    return {**layer, "tools": {**tools, "sandbox": {"mode": tools["sandbox"]}}}


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
    if is_dashscope(auth.base_url) and settings.api_key_source != "OPENAI_API_KEY":
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
    """Pick base URL, key and model. Any one credential (a key or a base URL) suffices.
    `home` is only named in the error when there is none (`$QWEN_HOME` unless given)."""
    auth = settings.security.auth
    if not auth.api_key and not auth.base_url:
        raise CredentialsError(MISSING_CREDENTIALS.format(home=home or qwen_home()))
    base_url = normalize_base_url(auth.base_url or DASHSCOPE_URLS[auth.dashscope_region])
    dashscope = is_dashscope(base_url)
    model = settings.model.name or (DEFAULT_DASHSCOPE_MODEL if dashscope else None)
    return Provider(
        base_url=base_url,
        api_key=auth.api_key or NO_KEY,
        model=model,
        api_key_source=settings.api_key_source or "(no key set)",
        is_dashscope=dashscope,
    )
