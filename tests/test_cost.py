"""`qwen-code cost`: golden figures for a pinned set of inputs."""

from __future__ import annotations

import json

import pytest

from qwen_code.llm.pricing import PriceTable
from qwen_code.serve.catalog import Catalog, ServeError, parse_gpus
from qwen_code.serve.cost import CostRequest, api_option, compare, decode_at
from qwen_code.serve.render import cost_text
from tests.helpers import run_cli

CATALOG = Catalog.load()
IDE069 = [{"concurrency": 32, "tok_s": 1029.75}, {"concurrency": 64, "tok_s": 2031.11}]


def request(**kwargs: object) -> CostRequest:
    base: dict[str, object] = {
        "tokens_per_day": 50_000_000,
        "choice": CATALOG.resolve("480b:fp8"),
        "gpus": parse_gpus("8xH100"),
    }
    return CostRequest(**{**base, **kwargs})  # type: ignore[arg-type]


def figures(report: object) -> list[tuple[str, float | None, float | None]]:
    return [
        (
            o.name,
            None if o.per_million is None else round(o.per_million, 4),
            o.per_day and round(o.per_day, 2),
        )
        for o in report.options  # type: ignore[attr-defined]
    ]


def test_the_issue_example() -> None:
    code, out = run_cli(
        "cost", "--tokens-per-day", "50M", "--input-share", "0.9", "--cache-hit", "0.6",
        "--context", "64K", "--gpus", "8xH100", "--gpu-price", "3.99", "--utilization", "0.6",
    )  # fmt: skip
    assert code == 0
    width = out.index("how")
    rows = [line[:width].rstrip() for line in out.splitlines()[:5]]
    assert rows == [
        "option                                        $/1M tokens    $/day",
        "self-host 8x H100, qwen3-coder-480b-a35b-fp8       $15.32  $766.08",
        "API qwen3-coder-plus                                $1.74   $87.12",
        "API qwen3-coder-flash                              $0.484   $24.20",
        "API qwen3-coder-480b-a35b-instruct                  $3.78  $189.00",
    ]
    assert "$766.08  rental: 8 x $3.99/GPU-h; busy 10.8 h/day: 1 node, 45% loaded" in out
    assert "$87.12  tier up to 128,000 input tokens: $1.8 in / $0.36 cached / $9 out per 1M" in out
    assert (
        "  One node costs $766.08/day and serves at most 111,213,000 tokens/day of this mix "
        "($6.89 per 1M tokens at full load).\n"
        "  vs API qwen3-coder-plus: the API is cheaper at any volume "
        "(break-even needs 395% load).\n"
    ) in out
    assert (
        "  - decode 128.7 tok/s at 4 concurrent sequences (the KV cache of vllm TP8 + EP8 holds "
        in out
    )
    assert "45,000,000 input (60% cached, 18,000,000 to prefill) and 5,000,000 output" in out


def test_the_issue_example_figures() -> None:
    report = compare(request(context=65_536, gpu_price=3.99))
    assert figures(report) == [
        ("self-host 8x H100, qwen3-coder-480b-a35b-fp8", 15.3216, 766.08),
        ("API qwen3-coder-plus", 1.7424, 87.12),
        ("API qwen3-coder-flash", 0.484, 24.2),
        ("API qwen3-coder-480b-a35b-instruct", 3.78, 189.0),
    ]
    assert report.figures == {
        "decode_tok_s": 128.71875,
        "prefill_tok_s": 8124.44,
        "busy_hours_per_day": pytest.approx(10.7901055),
        "node_cost_per_hour": 31.92,
        "nodes": 1,
        "concurrency": 4,
        "layout": "vllm TP8 + EP8",
    }


def test_the_worked_example_of_serving_md_11() -> None:
    """8x H100 at $32/h, 2,031 output tok/s with 512-token prompts: $4.4 per 1M output,
    against $9 through qwen3-coder-plus: break-even at about 49% utilisation."""
    report = compare(
        request(
            tokens_per_day=100_000_000,
            input_share=0.8,
            cache_hit=0.0,
            context=512,
            gpu_price=4.0,
            api_models=("qwen3-coder-plus",),
        )
    )
    assert report.break_even == (
        "One node costs $768.00/day and serves at most 877,439,520 tokens/day of this mix "
        "($0.88 per 1M tokens at full load).",
        "vs API qwen3-coder-plus: self-hosting wins above 426,666,667 tokens/day (49% load).",
    )
    per_million_output_full_load = 768 / 877_439_520 * 1e6 * 5
    assert round(per_million_output_full_load, 1) == 4.4
    assert figures(report)[1] == ("API qwen3-coder-plus", 1.8, 180.0)


def test_owned_hardware_power_and_amortisation() -> None:
    report = compare(
        request(
            choice=CATALOG.resolve("next:fp8"),
            gpus=parse_gpus("1xH200"),
            power_price=0.12,
            hardware_price=30_000,
            context=65_536,
        )
    )
    host = report.options[0]
    assert host.detail.startswith(
        "owned: 0.95 kW x $0.12/kWh = $0.11/h + $30,000/GPU over 3 years = $1.14/h; busy "
    )
    assert round(report.figures["node_cost_per_hour"], 5) == round(
        0.945 * 0.12 + 30_000 / 26_280, 5
    )
    assert host.per_day == pytest.approx(24 * report.figures["node_cost_per_hour"])
    assert "vs API qwen3-coder-plus: self-hosting wins above " in report.break_even[1]


def test_tiers_follow_the_request_size() -> None:
    table = PriceTable.builtin()
    plus_200k = api_option(request(context=200_000), "qwen3-coder-plus", table)
    assert round(plus_200k.per_million or 0, 4) == 2.904
    assert "tier up to 256,000 input tokens: $3 in / $0.6 cached / $15 out" in plus_200k.detail
    past = api_option(request(context=1_048_576), "qwen3-coder-plus", table)
    assert (past.per_million, past.detail) == (
        None,
        "1,048,576-token requests are past its last tier",
    )
    assert api_option(request(), "my-model", table).detail == "no built-in price"


def test_h200_uses_the_best_lower_bound() -> None:
    report = compare(request(gpus=parse_gpus("8xH200"), context=200_000))
    assert report.figures["decode_tok_s"] == pytest.approx(1029.75 * 10 / 32)
    assert "(measured on H100: a lower bound)" in report.assumptions[0]


def test_no_measurement_then_overrides() -> None:
    choice, gpus = CATALOG.resolve("30b:fp8"), parse_gpus("1xH100")
    host = compare(request(choice=choice, gpus=gpus)).options[0]
    assert host.per_million is None and "pass --decode-tok-s and --prefill-tok-s" in host.detail
    report = compare(request(choice=choice, gpus=gpus, decode_tok_s=1000, prefill_tok_s=10_000))
    assert figures(report)[0] == ("self-host 1x H100, qwen3-coder-30b-a3b-fp8", 1.9152, 95.76)
    assert report.assumptions[0] == "Prefill and decode time add up (conservative)."
    assert "self-hosting wins above 54,958,229 tokens/day (9% load)" in report.break_even[1]


def test_what_does_not_fit_is_said() -> None:
    host = compare(request(gpus=parse_gpus("2xH100"))).options[0]
    assert host.per_million is None and host.detail.startswith("does not fit: ")


def test_bad_inputs() -> None:
    with pytest.raises(ServeError, match="--input-share"):
        compare(request(input_share=1.0))
    with pytest.raises(ServeError, match="--utilization"):
        compare(request(utilization=0))
    with pytest.raises(ServeError, match="No rental price for L40S"):
        compare(
            request(
                choice=CATALOG.resolve("30b:fp8"),
                gpus=parse_gpus("4xL40S"),
                decode_tok_s=1,
                prefill_tok_s=1,
            )
        )


@pytest.mark.parametrize(
    ("concurrency", "ceiling", "expected"),
    [
        (4, None, 128.71875),
        (32, None, 1029.75),
        (48, None, 1530.43),
        (128, None, 2031.11),
        (128, 3000, 3000),
    ],
)
def test_decode_at(concurrency: int, ceiling: float | None, expected: float) -> None:
    assert decode_at(IDE069, concurrency, ceiling) == pytest.approx(expected)


def test_json_output() -> None:
    code, out = run_cli("cost", "--tokens-per-day", "50M", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["tokens_per_day"] == 50_000_000 and data["context"] == 65_536
    assert [o["name"] for o in data["options"]][1:] == [
        "API qwen3-coder-plus",
        "API qwen3-coder-flash",
        "API qwen3-coder-480b-a35b-instruct",
    ]
    assert data["figures"]["layout"] == "vllm TP8 + EP8"
    assert cost_text(compare(request())).startswith("option")
