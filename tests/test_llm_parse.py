"""LLM output parsing: a corpus of real-looking bad outputs, the schema rules, and fuzzing.

The corpus (``tests/llm_corpus/cases.json``) holds what models really send — deepseek-r1
``<think>`` blocks, chatty prose, fences, truncated JSON, refusals, NaN, synonyms — each with its
expected outcome: ``valid`` (action/symbol/sizes) or ``error`` (substrings the error must contain,
so it names the field or the problem)."""

from __future__ import annotations

import json
import math
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from phantomex.brains.llm.answer_schema import decision_json_schema
from phantomex.brains.llm.parse import ParseOutcome, parse_decision, repair_prompt
from phantomex.brains.llm.schema import (
    MAX_NOTIONAL,
    MAX_PRICE,
    MAX_QUANTITY,
    MAX_REASONING_CHARS,
    LLMDecision,
    to_decision,
)
from phantomex.domain.models import Action, Decision

CORPUS_PATH = Path(__file__).parent / "llm_corpus" / "cases.json"
CORPUS: list[dict[str, Any]] = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))


def raw_of(case: dict[str, Any]) -> str | None:
    template = case.get("raw_template")
    if template:
        return str(
            template["prefix"] + template["filler"] * template["repeat"] + template["suffix"]
        )
    raw = case["raw"]
    return None if raw is None else str(raw)


def dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def assert_invariants(outcome: ParseOutcome) -> None:
    """What every outcome satisfies, whatever the input."""
    assert isinstance(outcome, ParseOutcome)
    assert (outcome.decision is None) != (outcome.error is None)
    assert isinstance(outcome.cleaned, str)
    assert isinstance(outcome.warnings, list)
    assert not any(w.startswith("parser failure") for w in outcome.warnings)  # no internal error
    if outcome.error is not None:
        assert outcome.error.strip()
        assert len(outcome.error) <= 400
        return
    decision = outcome.decision
    assert isinstance(decision, Decision)
    assert decision.action in set(Action)
    if decision.action is not Action.HOLD:
        assert decision.symbol
    else:
        assert decision.quantity is None and decision.notional is None
    for value, maximum in (
        (decision.quantity, MAX_QUANTITY),
        (decision.notional, MAX_NOTIONAL),
        (decision.stop_loss, MAX_PRICE),
        (decision.take_profit, MAX_PRICE),
    ):
        if value is not None:
            assert isinstance(value, Decimal)
            assert value.is_finite()
            assert 0 < value <= maximum
    if decision.confidence is not None:
        assert math.isfinite(decision.confidence)
        assert 0 <= decision.confidence <= 1
    assert len(decision.reasoning) <= MAX_REASONING_CHARS
    if decision.symbol is not None:
        assert decision.symbol == decision.symbol.strip().upper()


# --------------------------------------------------------------------------- the corpus


def test_corpus_is_big_and_varied() -> None:
    assert len(CORPUS) >= 40
    kinds = {case["expect"] for case in CORPUS}
    assert kinds == {"valid", "error"}
    assert len({case["id"] for case in CORPUS}) == len(CORPUS)
    assert sum(case["expect"] == "error" for case in CORPUS) >= 20


@pytest.mark.parametrize("case", CORPUS, ids=[case["id"] for case in CORPUS])
def test_corpus_case(case: dict[str, Any]) -> None:
    outcome = parse_decision(raw_of(case))
    assert_invariants(outcome)
    if case["expect"] == "valid":
        assert outcome.error is None, f"{case['id']}: unexpected error {outcome.error!r}"
        decision = outcome.decision
        assert decision is not None
        assert decision.action == Action(case["action"])
        assert decision.symbol == case["symbol"]
        assert decision.quantity == dec(case["quantity"])
        assert decision.notional == dec(case["notional"])
        if "confidence" in case:
            assert decision.confidence == pytest.approx(case["confidence"])
        for key in ("stop_loss", "take_profit"):
            if key in case:
                assert getattr(decision, key) == dec(case[key])
        if "reasoning_contains" in case:
            assert case["reasoning_contains"] in decision.reasoning
    else:
        assert outcome.decision is None, f"{case['id']}: expected an error, got {outcome.decision}"
        assert outcome.error is not None
        for fragment in case["error_contains"]:
            assert fragment.lower() in outcome.error.lower(), (
                f"{case['id']}: {fragment!r} not in {outcome.error!r}"
            )
    if "thinking_contains" in case:
        assert outcome.thinking is not None and case["thinking_contains"] in outcome.thinking
    if "warning_contains" in case:
        joined = " | ".join(outcome.warnings)
        assert case["warning_contains"] in joined, joined


def test_corpus_errors_make_a_usable_repair_prompt() -> None:
    for case in CORPUS:
        outcome = parse_decision(raw_of(case))
        if outcome.error is not None:
            prompt = repair_prompt(outcome.error)
            assert outcome.error.split()[0] in prompt
            assert '"action"' in prompt and "JSON object" in prompt


# --------------------------------------------------------------------------- parse details


def test_reasoning_field_becomes_thinking_and_is_not_parsed() -> None:
    outcome = parse_decision(
        '{"action": "hold", "reasoning": "flat", "confidence": 0.5}',
        reasoning_field='I considered {"action": "buy", "symbol": "BTC"} but no.',
    )
    assert outcome.decision is not None and outcome.decision.action is Action.HOLD
    assert outcome.thinking is not None and "I considered" in outcome.thinking


def test_reasoning_field_and_inline_think_are_both_kept() -> None:
    outcome = parse_decision(
        '<think>inline thoughts</think>{"action": "hold"}', reasoning_field="separate thoughts"
    )
    assert outcome.thinking is not None
    assert "inline thoughts" in outcome.thinking and "separate thoughts" in outcome.thinking


def test_cleaned_is_the_json_that_was_parsed() -> None:
    raw = 'Sure!\n```json\n{"action": "hold", "reasoning": "x"}\n```\nBye'
    outcome = parse_decision(raw)
    assert outcome.cleaned == '{"action": "hold", "reasoning": "x"}'
    assert outcome.payload == {"action": "hold", "reasoning": "x"}


def test_first_valid_object_wins_even_after_an_invalid_one() -> None:
    raw = '{"action": "long", "symbol": "BTC"} then {"action": "sell", "symbol": "ETH"}'
    outcome = parse_decision(raw)
    assert outcome.decision is not None
    assert (outcome.decision.action, outcome.decision.symbol) == (Action.SELL, "ETH")


def test_error_of_the_first_decision_like_object_is_reported() -> None:
    outcome = parse_decision('{"action": "long", "symbol": "BTC"} {"action": "short"}')
    assert outcome.error is not None and "long" in outcome.error


def test_numbers_stay_exact_decimals() -> None:
    outcome = parse_decision('{"action": "buy", "symbol": "BTC", "quantity": 0.1, "notional": 1}')
    assert outcome.decision is not None
    assert outcome.decision.quantity == Decimal("0.1")
    assert str(outcome.decision.quantity) == "0.1"


def test_meta_records_ignored_keys_and_warnings() -> None:
    outcome = parse_decision('{"action": "hold", "mood": "calm", "reasoning": "x"}')
    assert outcome.decision is not None
    assert outcome.decision.meta["ignored_keys"] == ["mood"]
    assert any("ignored keys" in w for w in outcome.warnings)


def test_every_parser_warning_is_on_the_decision() -> None:
    raw = "Here you go: {action: 'hold', reasoning: 'flat', confidence: 85, mood: 'calm'}"
    outcome = parse_decision(raw)
    assert outcome.decision is not None
    warnings = outcome.decision.meta["warnings"]
    assert warnings == outcome.warnings
    for expected in ("repaired non-standard JSON", "ignored text around the JSON", "ignored keys"):
        assert any(expected in w for w in warnings), (expected, warnings)
    assert any("percentage" in w for w in warnings)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"action": "buy", "action": "sell", "symbol": "BTC"}', "action"),
        ('{"action": "buy", "side": "sell", "symbol": "BTC"}', "action"),  # an alias repeats it
        ('{"action": "hold", "action": "buy", "symbol": "BTC"}', "action"),
        ('{"action": "buy", "symbol": "BTC", "symbol": "ETH"}', "symbol"),
        ('{"action": "buy", "symbol": "BTC", "quantity": 1, "quantity": 10}', "quantity"),
        ('{"action": "sell", "symbol": "ETH", "notional": 5, "usd": 500}', "notional"),
        ("action: buy\nsymbol: BTC\naction: sell", "action"),  # key: value lines too
    ],
)
def test_two_different_values_for_what_is_traded_are_refused(raw: str, field: str) -> None:
    outcome = parse_decision(raw)
    assert outcome.decision is None and outcome.error is not None
    assert outcome.error.startswith(f"{field} is given 2 times with different values")
    assert "repair" not in outcome.error and field in repair_prompt(outcome.error)


def test_a_repeat_that_cannot_change_the_trade_is_a_warning() -> None:
    same = parse_decision('{"action": "buy", "Action": "BUY", "symbol": "BTC", "ticker": "btc"}')
    assert same.decision is not None and same.decision.action is Action.BUY
    assert "action given 2 times ('action', 'Action'), with the same value" in same.warnings
    assert any(w.startswith("symbol given 2 times") for w in same.warnings)
    notes = parse_decision('{"action": "hold", "reasoning": "first", "reasoning": "second"}')
    assert notes.decision is not None and notes.decision.reasoning == "first"
    assert (
        "reasoning given 2 times ('reasoning', 'reasoning'); used the first, 'first'"
        in (notes.decision.meta["warnings"])
    )
    sizes = parse_decision('{"action": "hold", "quantity": 1, "quantity": 2}')  # a hold: no size
    assert sizes.decision is not None and sizes.decision.quantity is None
    assert any(w.startswith("quantity given 2 times") for w in sizes.warnings)


def test_a_repeated_wrapper_key_shows_both_decisions() -> None:
    raw = (
        '{"decision": {"action": "sell", "symbol": "ETH", "reasoning": "a"},'
        ' "decision": {"action": "buy", "symbol": "BTC", "reasoning": "b"}}'
    )
    outcome = parse_decision(raw)
    assert outcome.decision is not None and outcome.decision.action is Action.SELL
    assert any("more than one decision" in w for w in outcome.warnings)


def test_non_string_input_does_not_raise() -> None:
    outcome = parse_decision(123)  # type: ignore[arg-type]
    assert outcome.decision is None and outcome.error


def test_deeply_nested_brackets_do_not_raise() -> None:
    for raw in (
        "[" * 50_000,
        "{" * 50_000,
        "[" * 5000 + "]" * 5000,
        '{"a":' * 3000 + "1" + "}" * 3000,
        '{"action": "hold", "reasoning": ' + "[" * 900 + "]" * 900 + "}",
        '{"action": "hold", "reasoning": ' + '{"a":' * 900 + "1" + "}" * 900 + "}",
    ):
        assert_invariants(parse_decision(raw))


PATHOLOGICAL = {
    "think_opens": "<think>" * 30_000,
    "think_closes": "</think>" * 30_000,
    "think_open_no_gt": "<think " * 30_000,
    "xml_opens": "<action>" * 30_000,
    "kv_spaces": "action:" + " " * 200_000 + "x",
    "quote_braces": '{"' * 100_000,
    "single_quote_braces": "{'" * 100_000 + "'",
    "nested_malformed": "{ x " + "{" * 20_000 + " a " + "}" * 20_000 + " }",
    "deep_json": '{"a":' * 3000 + "1" + "}" * 3000,
    "many_malformed": "{x y}" * 50_000,
    "oversized": "a" * 600_000 + '{"action": "hold"}',
}


@pytest.mark.parametrize("raw", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_inputs_are_fast(raw: str) -> None:
    """Linear-time parsing: a quadratic regex or search would take minutes on these (CPU time
    of this process, which a loaded machine does not inflate the way it does wall time)."""
    started = time.process_time()
    outcome = parse_decision(raw)
    assert time.process_time() - started < 10.0
    assert_invariants(outcome)
    assert not any("parser failure" in w for w in outcome.warnings)


def test_many_small_objects_are_bounded() -> None:
    assert_invariants(parse_decision("{}" * 50_000 + '{"action": "hold"}'))


# --------------------------------------------------------------------------- schema


def test_schema_is_strict_friendly() -> None:
    schema = decision_json_schema()
    assert schema["type"] == "object"
    assert schema["required"] == ["action", "symbol", "reasoning", "confidence"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) <= set(schema["properties"])
    assert schema["properties"]["action"]["enum"] == ["buy", "sell", "hold"]
    json.dumps(schema)  # serialisable as is
    strict = decision_json_schema(all_required=True)
    assert set(strict["required"]) == set(strict["properties"])
    with_symbols = decision_json_schema(["BTC", "ETH", "BTC"])
    assert with_symbols["properties"]["symbol"]["enum"] == ["BTC", "ETH", None]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("0.5", True),
        ("27000", True),
        ("27000.25", True),
        ("0.0000000001", True),
        ("0", False),
        ("0.0", False),
        ("-1", False),
        ("-0.5", False),
        ("01", False),
        ("1e5", False),
        ("1.", False),
        ("1000000000000", False),  # 13 integer digits: over every limit
    ],
)
def test_sizes_and_exit_prices_are_positive_decimals_by_pattern(text: str, ok: bool) -> None:
    """A grammar cannot enforce ``minimum`` (llama.cpp ignores it), so the schema states sizes and
    exit prices as pattern-constrained strings (under ``anyOf`` with null: a type list would drop
    the pattern there); whatever matches is a valid size for :class:`LLMDecision`."""
    prop = decision_json_schema()["properties"]["stop_loss"]
    string, null = prop["anyOf"]
    assert null == {"type": "null"} and string["type"] == "string"
    assert bool(re.fullmatch(string["pattern"], text)) is ok
    for field in ("quantity", "notional", "take_profit"):
        assert decision_json_schema()["properties"][field]["anyOf"] == prop["anyOf"]
    if ok:
        decision = LLMDecision.model_validate(
            {"action": "buy", "symbol": "BTC", "quantity": text, "stop_loss": text}
        )
        assert decision.stop_loss == Decimal(text)


def test_llm_decision_rules() -> None:
    d = LLMDecision.model_validate(
        {"ACTION": "Sell", "symbol": " eth/usdc ", "quantity": "1,234.5", "confidence": "50%"}
    )
    assert (d.action, d.symbol, d.quantity, d.confidence) == (
        Action.SELL,
        "ETH",
        Decimal("1234.5"),
        0.5,
    )
    assert LLMDecision.model_validate({"action": "buy", "symbol": "BRK-B"}).symbol == "BRK-B"
    with pytest.raises(ValidationError, match="quantity"):
        LLMDecision.model_validate({"action": "buy", "symbol": "BTC", "quantity": "1,5"})
    with pytest.raises(ValidationError, match="symbol"):
        LLMDecision.model_validate({"action": "sell"})
    with pytest.raises(ValidationError, match="take_profit"):
        LLMDecision.model_validate({"action": "buy", "symbol": "X", "take_profit": "Infinity"})


def test_to_decision_copies_every_field() -> None:
    d = LLMDecision.model_validate(
        {
            "action": "buy",
            "symbol": "BTC",
            "quantity": "0.5",
            "notional": 100,
            "reasoning": "r",
            "confidence": 0.3,
            "stop_loss": "26000",
            "take_profit": 30000,
        }
    )
    decision = to_decision(d)
    assert decision == Decision(
        action=Action.BUY,
        symbol="BTC",
        quantity=Decimal("0.5"),
        notional=Decimal(100),
        reasoning="r",
        confidence=0.3,
        stop_loss=Decimal(26000),
        take_profit=Decimal(30000),
        meta=decision.meta,
    )
    assert decision.meta["source"] == "llm"


def test_repair_prompt_quotes_the_error_briefly() -> None:
    prompt = repair_prompt("quantity: must be greater than 0 (got -1)\n" + "x" * 5000)
    assert "quantity: must be greater than 0 (got -1)" in prompt
    assert len(prompt) < 1200
    assert "JSON object" in prompt


# --------------------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["buy", "SELL", " hold ", "long", "BTC", "btc/usdt", "all", "85%", "1,000.5"]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
_keys = st.one_of(
    st.sampled_from(
        [
            "action",
            "Action",
            "symbol",
            "quantity",
            "notional",
            "reasoning",
            "confidence",
            "stop_loss",
            "take_profit",
            "side",
            "qty",
            "amount",
            "decision",
            "trade",
        ]
    ),
    st.text(max_size=10),
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=6)
    ),
    max_leaves=20,
)
_decision_dicts = st.fixed_dictionaries(
    {"action": st.sampled_from(["buy", "sell", "hold", "BUY", "long", 1, None])},
    optional={
        "symbol": _json_scalars,
        "quantity": _json_scalars,
        "notional": _json_scalars,
        "reasoning": _json_scalars,
        "confidence": _json_scalars,
        "stop_loss": _json_scalars,
        "take_profit": _json_scalars,
    },
)


@FUZZ
@given(st.text(max_size=400))
def test_fuzz_arbitrary_text_never_raises(raw: str) -> None:
    assert_invariants(parse_decision(raw))


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                "{",
                "}",
                "[",
                "]",
                '"',
                "'",
                "\\",
                ":",
                ",",
                "<think>",
                "</think>",
                "```json\n",
                "```",
                '"action"',
                '"buy"',
                "hold",
                "NaN",
                "1e309",
                "// x\n",
                "/*",
                " ",
                "\n",
                "symbol: BTC\n",
                "action: sell\n",
            ]
        ),
        max_size=60,
    ).map("".join)
)
def test_fuzz_json_shaped_noise_never_raises(raw: str) -> None:
    assert_invariants(parse_decision(raw))


@FUZZ
@given(_json_values, st.text(max_size=20), st.text(max_size=20))
def test_fuzz_arbitrary_json_never_raises(value: Any, before: str, after: str) -> None:
    text = json.dumps(value, default=str)
    assert_invariants(parse_decision(before + text + after))
    assert_invariants(parse_decision(repr(value)))  # Python-literal style


@FUZZ
@given(_decision_dicts, st.sampled_from(["json", "repr", "fenced", "think", "string"]))
def test_fuzz_decision_dicts_satisfy_invariants(payload: dict[str, Any], style: str) -> None:
    text = json.dumps(payload, default=str)
    raw = {
        "json": text,
        "repr": repr(payload),
        "fenced": f"Here you go:\n```json\n{text}\n```",
        "think": f"<think>hmm {{</think>\n{text}",
        "string": json.dumps(text),
    }[style]
    outcome = parse_decision(raw)
    assert_invariants(outcome)
    action = payload["action"]
    if not (isinstance(action, str) and action.strip().lower() in {"buy", "sell", "hold"}):
        assert outcome.decision is None


@FUZZ
@given(
    st.sampled_from(["quantity", "notional", "stop_loss", "take_profit"]),
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals().map(str),
        st.integers().map(str),
    ),
)
def test_fuzz_sizes_are_finite_and_positive_or_rejected(key: str, value: Any) -> None:
    raw = json.dumps({"action": "buy", "symbol": "BTC", key: value})
    outcome = parse_decision(raw)
    assert_invariants(outcome)
    if outcome.decision is None:
        assert outcome.error is not None and key in outcome.error
