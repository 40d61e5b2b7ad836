"""Prices, request cost, `modelPricing` settings, session cost totals and headless cost output."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import PipeInput

from qwen_code.agent.events import AssistantMessage, UsageInfo
from qwen_code.agent.stats import SessionStats
from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.errors import ConfigError
from qwen_code.llm.pricing import (
    BUILTIN_PRICING,
    CacheUsage,
    PriceTable,
    builtin_applies,
    format_usd,
    load_pricing,
    total_cost,
)
from qwen_code.llm.stream import read_usage
from qwen_code.ui import commands
from qwen_code.ui.headless import run_headless
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import output, write_json

BUILTIN = PriceTable.builtin()


def usage(prompt: int, completion: int = 0, cached: int = 0) -> UsageInfo:
    return UsageInfo(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)


def cost(model: str, u: UsageInfo, table: PriceTable = BUILTIN) -> float | None:
    result = table.cost(model, u)
    return None if result is None else result.usd


# --- tiers -------------------------------------------------------------------------------------

PLUS_TIERS = [(32_000, 1.0, 5.0), (128_000, 1.8, 9.0), (256_000, 3.0, 15.0), (1_000_000, 6.0, 60.0)]


@pytest.mark.parametrize(("limit", "input_price", "output_price"), PLUS_TIERS)
def test_tier_boundaries_qwen3_coder_plus(
    limit: int, input_price: float, output_price: float
) -> None:
    # At the limit: this tier, every token of the request at its prices.
    at = cost("qwen3-coder-plus", usage(limit, 1_000))
    assert at == pytest.approx((limit * input_price + 1_000 * output_price) / 1e6)
    if limit == 1_000_000:
        assert cost("qwen3-coder-plus", usage(limit + 1, 1_000)) is None  # past the last tier
        return
    # One token over: the next tier, for all tokens (input and output).
    index = [t[0] for t in PLUS_TIERS].index(limit)
    _, next_in, next_out = PLUS_TIERS[index + 1]
    over = cost("qwen3-coder-plus", usage(limit + 1, 1_000))
    assert over == pytest.approx(((limit + 1) * next_in + 1_000 * next_out) / 1e6)


def test_every_builtin_tier_and_model() -> None:
    flash = [(32_000, 0.3, 1.5), (128_000, 0.5, 2.5), (256_000, 0.8, 4.0), (1_000_000, 1.6, 9.6)]
    for limit, price_in, price_out in flash:
        assert cost("qwen3-coder-flash", usage(limit, 100)) == pytest.approx(
            (limit * price_in + 100 * price_out) / 1e6
        )
    assert cost("qwen3-coder-480b-a35b-instruct", usage(1_000, 1_000)) == pytest.approx(
        (1_000 * 1.5 + 1_000 * 7.5) / 1e6
    )
    assert cost("qwen3-coder-480b-a35b-instruct", usage(256_001)) == pytest.approx(
        256_001 * 9.0 / 1e6
    )
    assert cost("qwen3-coder-30b-a3b-instruct", usage(32_001)) == pytest.approx(32_001 * 0.75 / 1e6)
    assert cost("qwen3-coder-30b-a3b-instruct", usage(500_000)) == pytest.approx(
        500_000 * 1.2 / 1e6
    )
    # The built-in data is well formed (it is not validated at run time).
    assert load_pricing(BUILTIN_PRICING).lookup("qwen3-coder-plus") == BUILTIN.lookup(
        "qwen3-coder-plus"
    )


def test_dated_snapshots_use_the_base_price() -> None:
    base = BUILTIN.lookup("qwen3-coder-plus")
    assert base is not None
    assert BUILTIN.lookup("qwen3-coder-plus-2025-09-23") == base
    assert BUILTIN.lookup("qwen3-coder-flash-2025-07-28") == BUILTIN.lookup("qwen3-coder-flash")
    assert BUILTIN.lookup("qwen3-coder-plus-turbo") is None
    assert BUILTIN.lookup("qwen3-coder-pluss") is None


def test_unknown_model_has_no_cost() -> None:
    assert BUILTIN.lookup("Qwen/Qwen3-Coder-30B-A3B-Instruct") is None
    assert cost("llama-3-70b", usage(1_000, 1_000)) is None
    assert total_cost("llama-3-70b", [usage(10, 10)]).cost_usd is None
    assert total_cost("llama-3-70b", []).cost_usd is None


# --- cached tokens ------------------------------------------------------------------------------


def test_cached_tokens_at_the_implicit_cache_price() -> None:
    result = BUILTIN.cost("qwen3-coder-plus", usage(20_000, 500, cached=15_000))
    assert result is not None
    expected = (5_000 * 1.0 + 15_000 * 0.2 + 500 * 5.0) / 1e6
    assert result.usd == pytest.approx(expected)
    assert result.savings_usd == pytest.approx(15_000 * (1.0 - 0.2) / 1e6)
    # The tier follows all input tokens, cached ones included.
    big = BUILTIN.cost("qwen3-coder-plus", usage(40_000, 0, cached=39_000))
    assert big is not None
    assert big.usd == pytest.approx((1_000 * 1.8 + 39_000 * 0.36) / 1e6)


def test_explicit_cache_creation_and_hits() -> None:
    created = CacheUsage(prompt_tokens=30_000, completion_tokens=100, cache_creation_tokens=29_000)
    result = BUILTIN.cost("qwen3-coder-plus", created)
    assert result is not None
    assert result.usd == pytest.approx((1_000 * 1.0 + 29_000 * 1.25 + 100 * 5.0) / 1e6)
    assert result.cache_write_premium_usd == pytest.approx(29_000 * 0.25 / 1e6)
    assert result.savings_usd == 0
    hit = CacheUsage(prompt_tokens=30_000, completion_tokens=100, cached_tokens=29_000)
    result = BUILTIN.cost("qwen3-coder-plus", hit)
    assert result is not None
    assert result.usd == pytest.approx((1_000 * 1.0 + 29_000 * 0.1 + 100 * 5.0) / 1e6)
    assert result.savings_usd == pytest.approx(29_000 * 0.9 / 1e6)


def test_read_usage_keeps_dashscope_explicit_cache_counts() -> None:
    plain = read_usage(
        {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}
    )
    assert plain == usage(10, 2, cached=4)
    assert type(plain) is UsageInfo
    created = read_usage(
        {
            "prompt_tokens": 29719,
            "completion_tokens": 435,
            "prompt_tokens_details": {
                "cache_creation": {"ephemeral_5m_input_tokens": 29713},
                "cache_creation_input_tokens": 29713,
                "cache_type": "ephemeral",
                "cached_tokens": 0,
            },
        }
    )
    assert isinstance(created, CacheUsage)
    assert (created.prompt_tokens, created.cache_creation_tokens) == (29719, 29713)
    nested = read_usage(
        {
            "prompt_tokens": 3019,
            "completion_tokens": 104,
            "prompt_tokens_details": {
                "cached_tokens": 2048,
                "cache_creation": {"cache_creation_input_tokens": 500, "cache_type": "ephemeral"},
            },
        }
    )
    assert isinstance(nested, CacheUsage)
    assert (nested.cached_tokens, nested.cache_creation_tokens) == (2048, 500)
    hit = read_usage(
        {
            "prompt_tokens": 1524,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 1305, "cache_type": "ephemeral"},
        }
    )
    assert isinstance(hit, CacheUsage)
    assert hit.explicit_cache and hit.cache_creation_tokens == 0
    # Totals stay plain UsageInfo sums.
    assert created + hit == usage(29719 + 1524, 445, cached=1305)


# --- settings -----------------------------------------------------------------------------------


def test_flat_override_and_new_model() -> None:
    table = load_pricing(
        {
            "my-model": {"input": 0.5, "output": 1.5, "cachedInput": 0.1},
            "qwen3-coder-plus": {"input": 2.0, "output": 3.0},
        }
    )
    assert cost("my-model", usage(1_000_000, 1_000_000, cached=500_000), table) == pytest.approx(
        0.5 * 0.5 + 0.5 * 0.1 + 1.5
    )
    # A flat price has no tiers: any size. Without cachedInput cached tokens are not discounted.
    assert cost("qwen3-coder-plus", usage(900_000, 0, cached=900_000), table) == pytest.approx(1.8)
    # Overriding the base id also prices its snapshots.
    assert cost("qwen3-coder-plus-2025-09-23", usage(1_000_000), table) == pytest.approx(2.0)
    # Other built-in models are still there.
    assert cost("qwen3-coder-flash", usage(1_000_000), table) == pytest.approx(1.6)


def test_tiered_override() -> None:
    table = load_pricing(
        {
            "tiered": {
                "tiers": [
                    {"upTo": 32768, "input": 1.0, "output": 2.0, "cachedInput": 0.5},
                    {"upTo": 131072, "input": 3.0, "output": 4.0},
                ]
            },
            "open-ended": {
                "tiers": [{"upTo": 10, "input": 1, "output": 1}, {"input": 2, "output": 2}]
            },
        }
    )
    assert cost("tiered", usage(32768, 10, cached=768), table) == pytest.approx(
        (32_000 * 1.0 + 768 * 0.5 + 10 * 2.0) / 1e6
    )
    assert cost("tiered", usage(32769, 10), table) == pytest.approx((32769 * 3 + 40) / 1e6)
    assert cost("tiered", usage(131073), table) is None  # beyond the last tier: unknown
    assert cost("open-ended", usage(10**7), table) == pytest.approx(20.0)


def test_null_removes_a_price() -> None:
    table = load_pricing({"qwen3-coder-plus": None})
    assert cost("qwen3-coder-plus", usage(10), table) is None
    assert cost("qwen3-coder-plus-2025-09-23", usage(10), table) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"input": 1.0}, "needs input and output"),
        ({"input": -1, "output": 1}, "greater than or equal to 0"),
        ({"input": "cheap", "output": 1}, "valid number"),
        ({"input": 1, "output": 1, "cachedinput": 0.1}, "cachedinput"),
        ({"tiers": []}, "tiers is empty"),
        ({"tiers": [{"input": 1, "output": 1}, {"upTo": 9, "input": 1, "output": 1}]}, "last tier"),
        (
            {"tiers": [{"upTo": 9, "input": 1, "output": 1}, {"upTo": 9, "input": 1, "output": 1}]},
            "must increase",
        ),
        ({"tiers": [{"upTo": 0, "input": 1, "output": 1}]}, "greater than 0"),
        ({"input": 1, "output": 1, "tiers": [{"input": 1, "output": 1}]}, "not both"),
        ("cheap", "valid dictionary"),
    ],
)
def test_bad_pricing_is_a_config_error_naming_the_key(entry: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_pricing({"good": {"input": 1, "output": 1}, "bad-model": entry})
    assert "modelPricing" in str(info.value)
    assert "'bad-model'" in str(info.value)
    assert message in str(info.value)


async def test_bad_pricing_in_settings_fails_session_start(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    with pytest.raises(ConfigError, match="qwen3-coder-plus"):
        await headless_json(tmp_path, settings_json={"modelPricing": {"qwen3-coder-plus": {}}})
    assert fake_llm.chat_requests == []


@pytest.mark.parametrize(
    ("url", "applies"),
    [
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", True),
        ("https://ws-1.ap-southeast-1.maas.aliyuncs.com/compatible-mode/v1", True),
        ("http://127.0.0.1:8000/v1", True),
        ("https://dashscope.aliyuncs.com/compatible-mode/v1", False),  # Beijing: CNY
        ("https://dashscope-us.aliyuncs.com/compatible-mode/v1", False),
        ("https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1", False),
        ("https://coding-intl.dashscope.aliyuncs.com/v1", False),  # Coding Plan: subscription
        ("https://ws-1.cn-beijing.maas.aliyuncs.com/compatible-mode/v1", False),
    ],
)
def test_builtin_prices_only_where_they_bill(url: str, applies: bool) -> None:
    assert builtin_applies(url) is applies
    table = load_pricing({"mine": {"input": 1, "output": 1}}, base_url=url)
    assert table.knows("qwen3-coder-plus") is applies
    assert table.knows("mine")


def test_format_usd() -> None:
    assert format_usd(0.0123) == "$0.0123"
    assert format_usd(0) == "$0.0000"
    assert format_usd(12.345) == "$12.35"
    assert format_usd(1234.5) == "$1,234.50"


# --- session totals -----------------------------------------------------------------------------


def test_session_stats_accumulate_cost_and_savings() -> None:
    stats = SessionStats()
    stats.observe(AssistantMessage(text="a", usage=usage(20_000, 1_000, cached=10_000)))
    stats.observe(AssistantMessage(text="b", usage=usage(40_000, 2_000, cached=30_000)))
    stats.observe(AssistantMessage(text="no usage"))
    totals = stats.settle("qwen3-coder-plus")
    first = (10_000 * 1.0 + 10_000 * 0.2 + 1_000 * 5.0) / 1e6
    second = (10_000 * 1.8 + 30_000 * 0.36 + 2_000 * 9.0) / 1e6
    assert totals.cost_usd == pytest.approx(first + second)
    assert stats.cost_usd == pytest.approx(first + second)
    assert stats.cache_savings_usd == pytest.approx((10_000 * 0.8 + 30_000 * 1.44) / 1e6)
    assert stats.requests == 3
    # Requests are priced once, at the model in use when they were settled.
    stats.observe(AssistantMessage(text="c", usage=usage(1_000_000, 0)))
    assert stats.settle("qwen3-coder-flash").cost_usd == pytest.approx(first + second + 1.6)
    assert stats.settle("qwen3-coder-plus").cost_usd == pytest.approx(first + second + 1.6)


def test_session_stats_unknown_cost_is_none() -> None:
    stats = SessionStats()
    assert stats.settle("anything").cost_usd == 0.0  # nothing spent yet
    stats.observe(AssistantMessage(text="a", usage=usage(10, 10)))
    assert stats.settle("my-local-model").cost_usd is None
    stats.observe(AssistantMessage(text="b", usage=usage(10, 10)))
    assert stats.settle("qwen3-coder-plus").cost_usd is None  # part of it stays unknown
    table = load_pricing({"my-local-model": {"input": 0, "output": 0}})
    stats = SessionStats()
    stats.observe(AssistantMessage(text="a", usage=usage(10, 10)))
    assert stats.settle("my-local-model", table).cost_usd == 0.0


def test_session_stats_count_cache_writes() -> None:
    stats = SessionStats()
    created = CacheUsage(prompt_tokens=30_000, completion_tokens=0, cache_creation_tokens=29_000)
    stats.observe(AssistantMessage(text="a", usage=created))
    totals = stats.settle("qwen3-coder-plus")
    assert stats.cache_creation_tokens == 29_000
    assert totals.cache_write_premium_usd == pytest.approx(29_000 * 0.25 / 1e6)


# --- headless output ----------------------------------------------------------------------------


async def headless_json(
    tmp_path: Path, output_format: str = "json", settings_json: dict[str, Any] | None = None
) -> tuple[int, str, str]:
    if settings_json is not None:
        write_json(tmp_path / ".qwen" / "settings.json", settings_json)
    settings = load_settings(Flags(yolo=True), cwd=tmp_path)
    out, err = io.StringIO(), io.StringIO()
    code = await run_headless(
        settings,
        resolve_provider(settings),
        "go",
        output_format=output_format,
        cwd=tmp_path,
        out=out,
        err=err,
        home=qwen_home(),
    )
    return code, out.getvalue(), err.getvalue()


async def test_json_result_reports_total_cost(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    fake_llm.script(
        tool_turn(
            call("read_file", file_path="a.py"),
            usage={"prompt_tokens": 20_000, "completion_tokens": 100, "cached_tokens": 15_000},
        ),
        text("A is 1.", usage={"prompt_tokens": 40_000, "completion_tokens": 50}),
    )
    code, out, _ = await headless_json(tmp_path)
    assert code == 0
    result = json.loads(out)
    first = (5_000 * 1.0 + 15_000 * 0.2 + 100 * 5.0) / 1e6
    second = (40_000 * 1.8 + 50 * 9.0) / 1e6
    assert result["model"] == "qwen3-coder-plus"
    assert result["total_cost_usd"] == pytest.approx(first + second)
    assert result["usage"]["cache_read_input_tokens"] == 15_000
    assert result["usage"]["input_tokens"] == 60_000
    assert result["usage"]["output_tokens"] == 150
    assert result["usage"]["cache_creation_input_tokens"] == 0
    for key in ("result", "num_turns", "duration_ms", "session_id", "permission_denials"):
        assert key in result


async def test_stream_json_result_and_explicit_cache_usage(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    details = {"cached_tokens": 0, "cache_creation_input_tokens": 9_000, "cache_type": "ephemeral"}
    fake_llm.script(
        text(
            "done",
            usage={
                "prompt_tokens": 10_000,
                "completion_tokens": 10,
                "prompt_tokens_details": details,
            },
        )
    )
    code, out, _ = await headless_json(tmp_path, "stream-json")
    assert code == 0
    messages = [json.loads(line) for line in out.splitlines()]
    result = messages[-1]
    assert result["type"] == "result"
    expected = (1_000 * 1.0 + 9_000 * 1.25 + 10 * 5.0) / 1e6
    assert result["total_cost_usd"] == pytest.approx(expected)
    assert result["usage"]["cache_creation_input_tokens"] == 9_000
    assistant = next(m for m in messages if m["type"] == "assistant")
    assert assistant["message"]["usage"]["cache_creation_input_tokens"] == 9_000
    assert "total_cost_usd" not in assistant


async def test_unknown_model_cost_is_null(
    tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_MODEL", "local-llama")
    fake_llm.script(text("hi"))
    code, out, _ = await headless_json(tmp_path)
    assert code == 0
    assert json.loads(out)["total_cost_usd"] is None


async def test_text_mode_prints_nothing_about_cost(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("hi", usage={"prompt_tokens": 100, "completion_tokens": 5}))
    code, out, err = await headless_json(tmp_path, "text")
    assert (code, out, err) == (0, "hi\n", "")


# --- REPL: /stats and the footer -----------------------------------------------------------------


async def test_repl_footer_and_stats_show_cost(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    assert "$" not in r.toolbar()  # nothing spent yet
    fake_llm.script(
        text(
            "hi", usage={"prompt_tokens": 20_000, "completion_tokens": 100, "cached_tokens": 5_000}
        )
    )
    await r.send("hello")
    spent = (15_000 * 1.0 + 5_000 * 0.2 + 100 * 5.0) / 1e6
    assert r.toolbar().endswith(f"│ {format_usd(spent)}")
    await commands.dispatch(r, "/stats")
    shown = output(r)
    assert "cached: 5,000 (25%)" in shown
    assert f"Cost: {format_usd(spent)}" in shown
    assert f"cache savings: {format_usd(5_000 * 0.8 / 1e6)}" in shown


async def test_repl_unknown_cost(repl: tuple[Repl, PipeInput], fake_llm: FakeLLM) -> None:
    r, _ = repl
    r.session.switch_model("local-llama")
    fake_llm.script(text("hi"))
    await r.send("hello")
    assert "$" not in r.toolbar()
    await commands.dispatch(r, "/stats")
    assert "Cost: unknown" in output(r)


def test_explicit_cache_prices_can_be_set() -> None:
    table = load_pricing(
        {"m": {"input": 1, "output": 2, "cacheWrite": 1.5, "explicitCachedInput": 0.05}}
    )
    u = CacheUsage(
        prompt_tokens=3_000_000,
        completion_tokens=0,
        cached_tokens=1_000_000,
        cache_creation_tokens=1_000_000,
    )
    assert cost("m", u, table) == pytest.approx(1.0 + 0.05 + 1.5)
