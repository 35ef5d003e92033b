"""Turning whatever a model said into a :class:`Decision`, without ever breaking a cycle.

:func:`parse_decision` never raises. It

1. takes reasoning out: ``<think>…</think>`` (also ``<thinking>``, ``<reasoning>``,
   ``<reflection>``), a lone ``</think>`` whose opening tag was in the prompt template (the answer
   is what follows the last one), and an unclosed ``<think>`` (the model ran out of tokens while
   thinking: an error, never a guess from the half-finished thoughts);
2. removes markdown fences (```` ```json ````, ```` ``` ````, ``~~~``) and a BOM;
3. finds the first balanced JSON object or array, with braces inside strings, prose around it,
   several objects (the first *valid* decision wins), an object nested in a wrapper
   (``{"decision": {...}}``, ``{"trade": {...}}``), a JSON document inside a JSON string, a list of
   decisions (the first valid one, with a warning); never inside a tool call written as text
   (``{"name": "place_order", "arguments": {...}}``, ``{"function": ...}``): that is a plan,
   not a decision, and an answer made only of such calls is an error;
4. repairs non-standard JSON when strict parsing fails: single quotes, Python ``True``/``None``,
   trailing commas, ``//``/``#``/``/* */`` comments, unquoted keys and bare-word values,
   typographic quotes, ``Decimal('0.5')``;
5. as a last resort, when there is no JSON at all, reads ``key: value`` lines (YAML-ish,
   markdown bullets) or ``<action>buy</action>`` tags — only the decision's own field names count;
6. validates with :class:`LLMDecision`; a failure becomes a short error naming the field, fit to
   quote back to the model once (:func:`repair_prompt`). A repeated key is kept with its repeats
   (:class:`~phantomex.brains.llm.schema.DuplicateKeys`), never resolved last-wins: two different
   values for what is traded are an error, other repeats a warning.

Every warning (repairs, ignored text, repeated or ignored keys, ...) is in
``ParseOutcome.warnings`` and on the decision, in ``meta["warnings"]``.

A truncated object (``{"action": "buy", "sym``) is an error, never completed by guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

from phantomex.brains.llm.field_lines import kv_fields, xml_fields
from phantomex.brains.llm.lenient_json import lenient_to_json
from phantomex.brains.llm.schema import (
    MAX_REASONING_CHARS,
    LLMDecision,
    has_action_key,
    json_object,
    key_value_pairs,
    normalize_key,
    to_decision,
)
from phantomex.domain.models import Decision

__all__ = ["ParseOutcome", "parse_decision", "repair_prompt"]

MAX_INPUT_CHARS: Final = 512_000  # longer outputs are cut (with a warning) before parsing
MAX_LENIENT_CHARS: Final = 100_000  # candidates longer than this only get strict JSON
MAX_LENIENT_TOTAL_CHARS: Final = 300_000  # lenient rewrites per response, in characters
MAX_CANDIDATES: Final = 200  # JSON parse attempts per response
MAX_PARSED_CHARS: Final = 4_000_000  # characters fed to the JSON parsers per response
MAX_NESTING: Final = 6  # wrapper / JSON-in-string depth searched for the decision
MAX_ERROR_CHARS: Final = 300

_TAGS = r"think|thinking|reasoning|reflection"
_THINK_TAG = re.compile(rf"<(/?)({_TAGS})\b[^<>]{{0,200}}>", re.IGNORECASE)
_FENCE_LINE = re.compile(r"^[ \t]*(?:```|~~~)[\w+\-.]*[ \t]*$", re.MULTILINE)
_FENCE_START = re.compile(r"^(?:```|~~~)[\w+\-.]*")
_FENCE_END = re.compile(r"(?:```|~~~)$")
_SPECIAL_STRICT = re.compile(r'[{}\[\]"\\]')
_SPECIAL_LENIENT = re.compile(r"[{}\[\]\"'\\]")
_PAIRS: Final = {"{": "}", "[": "]"}
_REFUSAL = re.compile(
    r"\b(?:I'?m sorry|I am sorry|I can(?:no|')t|I cannot|I'?m (?:not able|unable)|"
    r"as an AI|I won'?t)\b",
    re.IGNORECASE,
)

# lenient JSON


@dataclass(slots=True)
class ParseOutcome:
    """The result of :func:`parse_decision`: exactly one of ``decision`` / ``error`` is set.

    ``cleaned`` is the text the decision was read from (the JSON object when one was found, else
    the answer with reasoning and fences removed); ``thinking`` the reasoning taken out (from the
    text and/or the API's separate reasoning field); ``payload`` the raw object validated."""

    decision: Decision | None
    error: str | None
    cleaned: str
    thinking: str | None = None
    warnings: list[str] = field(default_factory=list)
    payload: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.decision is not None


class _Fail:
    """Marks a candidate that is not JSON (None is a valid JSON value)."""


_FAIL: Final = _Fail()


@dataclass(slots=True)
class _Node:
    start: int
    end: int | None = None  # exclusive; None = never closed
    children: list[_Node] = field(default_factory=list)


@dataclass(slots=True)
class _Search:
    attempts: int = 0
    parsed_chars: int = 0
    lenient_chars: int = 0
    truncated: bool = False
    parsed_object: bool = False
    malformed: bool = False
    planned: bool = False  # a tool call written as text was passed over
    first_error: tuple[str, str, dict[str, Any]] | None = None


# --------------------------------------------------------------------------- public API


def parse_decision(raw: str | None, *, reasoning_field: str | None = None) -> ParseOutcome:
    """Parse one model answer into a decision or a short, quotable error. Never raises."""
    try:
        return _parse(raw, reasoning_field)
    except Exception as exc:  # a parser bug or a pathological input must not stop the agent
        thinking = reasoning_field if isinstance(reasoning_field, str) else None
        return ParseOutcome(
            decision=None,
            error="the response could not be parsed; answer with one JSON object",
            cleaned="",
            thinking=thinking or None,
            warnings=[f"parser failure: {type(exc).__name__}"],
        )


def repair_prompt(error: str) -> str:
    """The single follow-up message asking the model to fix its answer."""
    reason = " ".join(str(error).split())[:500] or "it was not a valid decision"
    return (
        f"Your previous answer could not be used: {reason}\n"
        "Reply again with ONLY one JSON object, no prose and no markdown fences:\n"
        '{"action": "buy" | "sell" | "hold", "symbol": "<ticker>" or null, '
        '"quantity": <units > 0> or null, "notional": <USD > 0> or null, '
        '"reasoning": "<short explanation>", "confidence": <number 0..1>}\n'
        "buy and sell need a symbol; leave quantity and notional null to let risk size the "
        "trade; hold needs no size."
    )


# --------------------------------------------------------------------------- pipeline


def _parse(raw: object, reasoning_field: object) -> ParseOutcome:
    thinking_parts: list[str] = []
    if isinstance(reasoning_field, str) and reasoning_field.strip():
        thinking_parts.append(reasoning_field.strip())
    warnings: list[str] = []

    def fail(error: str, cleaned: str = "") -> ParseOutcome:
        return ParseOutcome(
            decision=None,
            error=error,
            cleaned=cleaned,
            thinking="\n\n".join(thinking_parts) or None,
            warnings=warnings,
        )

    if raw is None:
        return fail("empty response")
    if not isinstance(raw, str):
        return fail("the response is not text")
    text = raw
    if len(text) > MAX_INPUT_CHARS:
        warnings.append(f"response cut from {len(text)} to {MAX_INPUT_CHARS} chars")
        text = text[:MAX_INPUT_CHARS]
    text = text.replace("\x00", "").lstrip("\ufeff").strip()
    if not text:
        return fail("empty response")

    text, inline_thinking, unclosed, rationale = _split_thinking(text)
    if inline_thinking:
        thinking_parts.append(inline_thinking)
    text = _strip_fences(text)
    if not text:
        if unclosed:
            return fail("the response ended inside a <think> block (output truncated?)")
        return fail("no answer after the reasoning" if thinking_parts else "empty response")

    text = _unquote_json_string(text, warnings)
    search = _Search()
    found = _search(text, search, warnings)
    if found is None and not search.parsed_object and not search.truncated:
        found = _fallback_fields(text, search, warnings)
    if found is not None:
        model, cleaned, payload = found
        warnings.extend(model.parse_warnings)
        if not model.reasoning and rationale:
            model = model.model_copy(update={"reasoning": _clip(rationale)})
            warnings.append("reasoning taken from the <reasoning> block")
        decision = to_decision(model, warnings)  # every warning travels with the decision
        return ParseOutcome(
            decision=decision,
            error=None,
            cleaned=cleaned,
            thinking="\n\n".join(thinking_parts) or None,
            warnings=warnings,
            payload=payload,
        )
    if search.first_error is not None:
        error, cleaned, payload = search.first_error
        outcome = fail(error, cleaned)
        outcome.payload = payload
        return outcome
    if search.truncated:
        return fail("the JSON object is incomplete (output truncated?)", text)
    if search.planned:
        return fail(
            "a tool call written as text is a plan, not a decision: answer with one JSON decision",
            text,
        )
    if search.parsed_object:
        return fail('the JSON has no "action" field', text)
    if search.malformed:
        return fail("the JSON object is malformed (could not be parsed)", text)
    if unclosed:
        return fail("the response ended inside a <think> block (output truncated?)", text)
    if _REFUSAL.search(text[:2000]):
        return fail("the response is a refusal, not a JSON decision", text)
    return fail("no JSON object found in the response", text)


def _split_thinking(text: str) -> tuple[str, str, bool, str]:
    """(answer, thinking, unclosed, reasoning): reasoning blocks removed from the answer.

    Tags are paired in one pass (linear time, whatever the input): a closing tag with no
    opening one means the opening tag was in the prompt template, so everything before it is
    thinking; tags inside an open block are content. ``reasoning`` is the content of closed
    ``<reasoning>`` tags (a stated rationale, used when the decision itself has none)."""
    answer: list[str] = []
    thinking: list[str] = []
    rationale: list[str] = []
    pos = 0
    open_name: str | None = None
    content_start = 0
    for match in _THINK_TAG.finditer(text):
        closing, name = bool(match.group(1)), match.group(2).lower()
        if open_name is None:
            if closing:
                thinking.append("".join(answer) + text[pos : match.start()])
                answer = []
            else:
                answer.append(text[pos : match.start()] + "\n")
                open_name, content_start = name, match.end()
            pos = match.end()
        elif closing and name == open_name:
            content = text[content_start : match.start()]
            thinking.append(content)
            if name == "reasoning":
                rationale.append(content.strip())
            open_name = None
            pos = match.end()
    unclosed = open_name is not None
    if unclosed:
        thinking.append(text[content_start:])
    else:
        answer.append(text[pos:])
    joined = "\n\n".join(t.strip() for t in thinking if t.strip())
    return "".join(answer).strip(), joined, unclosed, "\n".join(r for r in rationale if r)


def _clip(text: str) -> str:
    if len(text) <= MAX_REASONING_CHARS:
        return text
    return text[: MAX_REASONING_CHARS - 1].rstrip() + "…"


def _strip_fences(text: str) -> str:
    text = _FENCE_LINE.sub("", text).strip()
    text = _FENCE_START.sub("", text, count=1)
    text = _FENCE_END.sub("", text).strip()
    return text


def _unquote_json_string(text: str, warnings: list[str]) -> str:
    """A whole answer that is a JSON string (``"{\\"action\\": ...}"``) is its content."""
    for _ in range(2):
        if not (text.startswith('"') and text.endswith('"')):
            break
        try:
            inner = json.loads(text)
        except ValueError:
            break
        if not isinstance(inner, str):
            break
        warnings.append("the answer was a JSON-encoded string")
        text = inner.strip()
    return text


# --------------------------------------------------------------------------- JSON search


def _search(
    text: str, search: _Search, warnings: list[str]
) -> tuple[LLMDecision, str, dict[str, Any]] | None:
    """The first valid decision in balanced JSON spans, outermost first; a span that is not
    JSON is searched inside (``{ my answer: {...} }``). Double quotes only first; single quotes
    too when that found nothing (a Python repr with braces inside its strings)."""
    modes = [False, True] if "'" in text else [False]
    for lenient_quotes in modes:
        for root in _roots(text, lenient_quotes, search):
            stack = [root]
            while stack:
                node = stack.pop()
                if node.end is None:
                    stack.extend(reversed(node.children))
                    continue
                if search.attempts >= MAX_CANDIDATES or search.parsed_chars > MAX_PARSED_CHARS:
                    return None
                search.attempts += 1
                snippet = text[node.start : node.end]
                search.parsed_chars += len(snippet)
                value, repaired = _load(snippet, search)
                if isinstance(value, _Fail):
                    if snippet.startswith("{"):
                        search.malformed = True
                    stack.extend(reversed(node.children))
                    continue
                if isinstance(value, dict) or (
                    isinstance(value, list) and any(isinstance(v, dict) for v in value)
                ):
                    search.parsed_object = True
                found = _first_valid(value, snippet, search)
                if found is None:
                    continue
                model, payload, index, count = found
                if repaired:
                    warnings.append("repaired non-standard JSON")
                if node.start > 0 or node.end < len(text):
                    warnings.append("ignored text around the JSON")
                if count > 1 or _more_decisions_after(text, node.end):
                    warnings.append(
                        "more than one decision in the response; used the first valid one"
                        + (f" (#{index + 1})" if index else "")
                    )
                return model, snippet, payload
    return None


def _first_valid(
    value: Any, snippet: str, search: _Search
) -> tuple[LLMDecision, dict[str, Any], int, int] | None:
    payloads = list(_decision_dicts(value, 0, search))
    for index, payload in enumerate(payloads):
        try:
            model = LLMDecision.model_validate(payload)
        except ValidationError as exc:
            if search.first_error is None:
                search.first_error = (_summarise(exc), snippet, payload)
            continue
        return model, payload, index, len(payloads)
    return None


def _roots(text: str, lenient_quotes: bool, search: _Search) -> Iterator[_Node]:
    """Top-level bracket trees in order; an unclosed one runs to the end of the text."""
    special = _SPECIAL_LENIENT if lenient_quotes else _SPECIAL_STRICT
    quotes = "\"'" if lenient_quotes else '"'
    pos = 0
    while True:
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
        if not starts:
            return
        root = _scan(text, min(starts), special, quotes)
        yield root
        if root.end is None:
            if text.find("{", root.start) >= 0:
                search.truncated = True
            return
        pos = root.end


def _scan(text: str, start: int, special: re.Pattern[str], quotes: str) -> _Node:
    """Match brackets from ``start`` (an opener) outside strings; stops when it closes."""
    root = _Node(start)
    stack: list[tuple[_Node, str]] = [(root, text[start])]
    in_string: str | None = None
    escaped = -1
    for match in special.finditer(text, start + 1):
        i = match.start()
        char = text[i]
        if in_string is not None:
            if i == escaped:
                continue
            if char == "\\":
                escaped = i + 1
            elif char == in_string:
                in_string = None
            continue
        if char in quotes:
            in_string = char
        elif char in "{[":
            node = _Node(i)
            stack[-1][0].children.append(node)
            stack.append((node, char))
        elif char in "}]":
            if _PAIRS[stack[-1][1]] != char:
                continue  # a stray closer: ignore it
            node, _ = stack.pop()
            node.end = i + 1
            if not stack:
                return root
    return root


def _more_decisions_after(text: str, end: int) -> bool:
    rest = text[end : end + 20_000].lower()
    return '"action"' in rest or "'action'" in rest


def _load(snippet: str, search: _Search | None = None) -> tuple[Any, bool]:
    """(value, repaired) or (_FAIL, False). The lenient rewrite is pure Python, so its total
    input per response is bounded (``search.lenient_chars``)."""
    try:
        return _json_loads(snippet), False
    except (ValueError, RecursionError):
        pass
    if len(snippet) > MAX_LENIENT_CHARS:
        return _FAIL, False
    if search is not None:
        if search.lenient_chars + len(snippet) > MAX_LENIENT_TOTAL_CHARS:
            return _FAIL, False
        search.lenient_chars += len(snippet)
    try:
        return _json_loads(lenient_to_json(snippet)), True
    except (ValueError, RecursionError):
        return _FAIL, False


def _json_loads(text: str) -> Any:
    return json.loads(
        text,
        parse_float=Decimal,
        parse_int=Decimal,
        parse_constant=float,
        object_pairs_hook=json_object,  # a repeated key is seen, not silently last-wins
        strict=False,  # raw newlines / tabs inside strings
    )


def _decision_dicts(value: Any, depth: int, search: _Search) -> Iterator[dict[str, Any]]:
    """Decision-like objects in document order: the object itself, or inside wrappers, lists
    and JSON-encoded strings (up to MAX_NESTING levels), never inside a tool call."""
    if depth > MAX_NESTING:
        return
    if isinstance(value, dict):
        if has_action_key(value):
            yield value
            return
        if _is_tool_call(value):
            search.planned = True
            return
        for _, item in key_value_pairs(value):  # a repeated wrapper key too
            yield from _decision_dicts(item, depth + 1, search)
    elif isinstance(value, list):
        for item in value[:50]:
            yield from _decision_dicts(item, depth + 1, search)
    elif isinstance(value, str):
        inner = value.strip()
        if inner[:1] in ("{", "[") and len(inner) <= MAX_INPUT_CHARS:
            loaded, _ = _load(inner)
            if not isinstance(loaded, _Fail):
                yield from _decision_dicts(loaded, depth + 1, search)


_CALL_ARGUMENTS: Final = frozenset({"arguments", "parameters", "args", "input"})
_CALL_WRAPPERS: Final = frozenset({"function", "function_call", "tool_call", "tool_calls"})


def _is_tool_call(value: dict[Any, Any]) -> bool:
    """A tool call written as text: ``{"name": ..., "arguments": ...}`` (or ``parameters``),
    ``{"function": ...}``, ``{"tool_calls": [...]}``."""
    keys = {normalize_key(k) for k, _ in key_value_pairs(value)}
    return bool(keys & _CALL_WRAPPERS) or ("name" in keys and bool(keys & _CALL_ARGUMENTS))


def _summarise(exc: ValidationError) -> str:
    parts: list[str] = []
    for err in exc.errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    summary = "; ".join(parts) or "invalid decision"
    return summary if len(summary) <= MAX_ERROR_CHARS else summary[: MAX_ERROR_CHARS - 3] + "..."


# --------------------------------------------------------------------------- no-JSON fallbacks


def _fallback_fields(
    text: str, search: _Search, warnings: list[str]
) -> tuple[LLMDecision, str, dict[str, Any]] | None:
    """``<action>buy</action>`` tags, else ``action: buy`` lines (a field given twice is
    judged as in JSON: see :class:`~phantomex.brains.llm.schema.DuplicateKeys`)."""
    for payload, how in ((xml_fields(text), "XML-like tags"), (kv_fields(text), "key: value")):
        if not payload or not has_action_key(payload):
            continue
        try:
            model = LLMDecision.model_validate(payload)
        except ValidationError as exc:
            if search.first_error is None:
                search.first_error = (_summarise(exc), text, payload)
            return None
        warnings.append(f"no JSON; read {how} fields")
        return model, text, payload
    return None
