"""Limits on a headless run and its `--json-schema` contract.

`--max-budget-usd`, `--max-wall-time` and `--max-tool-calls` stop a run with exit code 55
(Qwen Code's budget exit); `--json-schema` ends it on the first `structured_output` call
that matches the schema. `RunLimits` holds what the flags asked for (checked when parsed);
a `RunGuard` watches the run's events and says when to stop (`Stop`). The wall-clock limit
is a timeout around the whole run (`headless.run_headless`), so a request that never
returns is stopped too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_code.agent.events import AssistantMessage, Event, ToolResult, UsageInfo
from qwen_code.errors import InputError
from qwen_code.llm.pricing import PriceTable, format_usd, total_cost
from qwen_code.tools.structured_output import NAME, PAYLOAD_KEY, SchemaProblem, make_validator
from qwen_code.ui.headless_outcome import Outcome

MAX_SCHEMA_BYTES = 4 * 1024 * 1024
MAX_STRUCTURED_RETRIES = 5
"""Rejected `structured_output` calls before the run gives up."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(s|m|h)?\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


@dataclass(slots=True, kw_only=True)
class RunLimits:
    max_budget_usd: float | None = None
    max_wall_time_s: float | None = None
    max_tool_calls: int | None = None
    json_schema: dict[str, Any] | None = None
    max_structured_retries: int = MAX_STRUCTURED_RETRIES


@dataclass(frozen=True, slots=True)
class Stop:
    """Why the run stops early: `reason` is the `Outcome.reason`; `payload` the accepted
    structured output (reason "completed")."""

    reason: str
    message: str = ""
    payload: dict[str, Any] | None = None


def limits_from_flags(
    *,
    json_schema: str | None,
    max_budget_usd: float | None,
    max_wall_time: str | None,
    max_tool_calls: int | None,
    cwd: Path,
) -> RunLimits:
    """The limits the flags ask for; InputError for a value that cannot be used."""
    if max_budget_usd is not None and not max_budget_usd > 0:
        raise InputError(f"--max-budget-usd: {max_budget_usd} is not a positive amount of USD.")
    if max_tool_calls is not None and max_tool_calls < 0:
        raise InputError(f"--max-tool-calls: {max_tool_calls} is negative.")
    return RunLimits(
        max_budget_usd=max_budget_usd,
        max_wall_time_s=None if max_wall_time is None else parse_wall_time(max_wall_time),
        max_tool_calls=max_tool_calls,
        json_schema=None if json_schema is None else load_schema(json_schema, cwd),
    )


def parse_wall_time(text: str) -> float:
    """Seconds in `90`, `30s`, `5m`, `1h`, `1.5h`; at least one second (less is a typo)."""
    match = _DURATION.match(text)
    if match is None:
        raise InputError(
            f"--max-wall-time: {text!r} is not a duration; use e.g. 90 (seconds), 30s, 5m, 1.5h."
        )
    seconds = float(match[1]) * _UNIT_S[(match[2] or "s").lower()]
    if seconds < 1:
        raise InputError(f"--max-wall-time: {text!r} is under one second.")
    return seconds


def load_schema(value: str, cwd: Path) -> dict[str, Any]:
    """The schema from `--json-schema`: JSON text, or `@path` to a file holding it."""
    source = "--json-schema"
    text = value
    if value.startswith("@"):
        path = (cwd / Path(value[1:]).expanduser()).resolve()
        source = f"--json-schema: {path}"
        text = _read_schema_file(path, source)
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        where = "" if value.startswith("@") else f" ({exc.msg}, at character {exc.pos})"
        raise InputError(f"{source}: not valid JSON{where}.") from None
    try:
        make_validator(schema)
    except SchemaProblem as exc:
        raise InputError(f"{source}: {exc}") from None
    return schema  # type: ignore[no-any-return]


def _read_schema_file(path: Path, source: str) -> str:
    if not path.is_file():
        raise InputError(f"{source}: no such file.")
    if path.stat().st_size > MAX_SCHEMA_BYTES:
        raise InputError(f"{source}: the file is over 4 MB; is it the right one?")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read it ({exc}).") from None


def check_price_known(limits: RunLimits, model: str, pricing: PriceTable) -> None:
    """`--max-budget-usd` needs the model's prices; InputError naming the setting if not."""
    if limits.max_budget_usd is not None and not pricing.knows(model):
        raise InputError(
            f"--max-budget-usd: the price of {model!r} is not known here, so the budget "
            "cannot be kept.",
            hint="Give its prices in the modelPricing setting (see docs/cost.md).",
        )


@dataclass(slots=True)
class RunGuard:
    """Watches a headless run's top-level events; `observe` returns a `Stop` when the run
    must end now. `requests`: the usage of every model request so far (the recorder's
    list, subagents' included), priced at `model`'s prices for the budget."""

    limits: RunLimits
    model: str
    pricing: PriceTable | None
    requests: list[UsageInfo]
    tool_calls: int = 0
    rejected: int = 0
    turns: int = 0
    stop: Stop | None = field(default=None)

    def observe(self, event: Event) -> Stop | None:
        if isinstance(event, AssistantMessage):
            self.turns += 1
            self.stop = self._before_calls(event)
        elif isinstance(event, ToolResult) and event.call.name == NAME and self.structured:
            self.stop = self._structured(event)
        return self.stop

    @property
    def structured(self) -> bool:
        return self.limits.json_schema is not None

    def _before_calls(self, message: AssistantMessage) -> Stop | None:
        """A reply that asks for tools: the budget is checked before they run (and so
        before the request that follows them), then the tool-call count."""
        if not message.tool_calls:
            return None
        budget = self.limits.max_budget_usd
        spent = None if budget is None else self.cost()
        if budget is not None and spent is not None and spent >= budget:
            return Stop(
                "max_budget_usd",
                f"the run has cost {format_usd(spent)}, reaching --max-budget-usd "
                f"{format_usd(budget)}; stopped before the next request.",
            )
        work = sum(1 for c in message.tool_calls if c.name != NAME)
        cap = self.limits.max_tool_calls
        if cap is not None and self.tool_calls + work > cap:
            return Stop(
                "max_tool_calls",
                f"the model asked for more than --max-tool-calls {cap} tool calls; stopped "
                f"before running them ({self.tool_calls} ran).",
            )
        self.tool_calls += work
        return None

    def _structured(self, result: ToolResult) -> Stop | None:
        if not result.is_error:
            return Stop("completed", payload=result.data.get(PAYLOAD_KEY))
        self.rejected += 1
        tries = self.limits.max_structured_retries
        if self.rejected < tries:
            return None
        return Stop(
            "structured_output_retries",
            f"the model's structured_output calls did not match the --json-schema schema "
            f"{tries} times; giving up. The last problem:\n{result.output}",
        )

    def cost(self) -> float | None:
        return total_cost(self.model, self.requests, self.pricing).cost_usd

    def no_answer(self, final_text: str) -> Stop:
        """The run ended without a matching structured_output call."""
        preview = " ".join(final_text.split())[:200]
        said = f' It answered: "{preview}"' if preview else ""
        return Stop(
            "no_structured_output",
            f"the model finished after {self.turns} turn(s) without calling structured_output "
            f"with an answer that matches the --json-schema schema.{said}",
        )


def settle(guard: RunGuard, outcome: Outcome) -> None:
    """Put what the guard decided into the run's outcome: the accepted structured output
    as the result, or why the run stopped."""
    stop = guard.stop
    if stop is None and guard.structured and outcome.reason == "completed":
        stop = guard.no_answer(outcome.result)
    if stop is None:
        return
    outcome.reason = stop.reason
    outcome.num_turns = max(outcome.num_turns, guard.turns)
    if stop.payload is not None:
        outcome.structured_output = stop.payload
        outcome.result = json.dumps(stop.payload, ensure_ascii=False)
        outcome.error = None
    else:
        outcome.error, outcome.result = stop.message, ""


def wall_time_stop(limits: RunLimits) -> Stop:
    seconds = limits.max_wall_time_s or 0
    return Stop("max_wall_time", f"the run took longer than --max-wall-time ({seconds:g}s).")
