"""The API's boundary on a real server: URLs, integers, identifiers, booleans, money and names
in every body and parameter, unknown query parameters, the body size limit, forwarded headers
and the offline API docs."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from argon2 import PasswordHasher
from conftest import ServerHandle, serve

TIMEOUT = 30
LIMIT = 1024 * 1024  # the default max_body_bytes
WINDOW = {"start": "2023-04-10T00:00:00Z", "end": "2023-04-10T00:10:00Z"}


def error_of(resp: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert error["message"]
    return error


@pytest.fixture(scope="module")
def client(running_server: ServerHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running_server.url, timeout=TIMEOUT) as c:
        yield c


@pytest.fixture(scope="module")
def agent_id(client: httpx.Client) -> str:
    return str(client.get("/api/agents").json()[0]["id"])


# -- 1. URLs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999",
        "http://localhost:11434 ",
        " http://localhost:11434",
        "http://localhost:abc",
        "http://local\x01host:11434",
        "http://localhost:11434/\x7f",
        "localhost:11434",
        "ftp://localhost:11434",
        "http://:11434",
    ],
)
def test_a_bad_llm_url_is_refused_naming_the_field(client: httpx.Client, url: str) -> None:
    body = {"name": "bad-url", "kind": "ollama", "base_url": url}
    error = error_of(client.post("/api/llm/endpoints", json=body))
    assert error["field"] == "base_url"
    assert "bad-url" not in [e["name"] for e in client.get("/api/llm/endpoints").json()]
    assert client.get("/api/llm/endpoints/bad-url/models").status_code == 404


def test_a_good_llm_url_is_kept(client: httpx.Client) -> None:
    body = {"name": "good-url", "kind": "openai", "base_url": "http://[::1]:9/v1"}
    assert client.post("/api/llm/endpoints", json=body).status_code == 201
    assert client.delete("/api/llm/endpoints/good-url").status_code == 200


# -- 2. integer query parameters ---------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/trades", "/api/decisions", "/api/agents/{id}/decisions"])
def test_a_huge_offset_is_a_4xx(client: httpx.Client, agent_id: str, path: str) -> None:
    resp = client.get(path.format(id=agent_id), params={"offset": "9223372036854775808"})
    assert error_of(resp)["field"] == "offset"


def test_every_integer_query_parameter_is_bounded(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                types = [param["schema"], *param["schema"].get("anyOf", [])]
                for s in (t for t in types if t.get("type") == "integer"):
                    where = f"{method.upper()} {path} {param['name']}"
                    assert "minimum" in s and s.get("maximum", 2**63) <= 2**31 - 1, where
                    checked += 1
    assert checked >= 8


# -- 4. identifiers and booleans ---------------------------------------------------------------
def test_an_empty_agent_id_does_not_kill_everyone(client: httpx.Client) -> None:
    for body in ({"agent_id": ""}, {"agent_id": "  "}):
        assert error_of(client.post("/api/kill-switch", json=body))["field"] == "agent_id"
    assert client.get("/api/kill-switch").json() == {"on": False}
    assert all(a["status"] != "stopped" for a in client.get("/api/agents").json())


@pytest.mark.parametrize("flatten", [0, 1, "true", "yes", None])
def test_flatten_must_be_a_json_boolean(client: httpx.Client, agent_id: str, flatten: Any) -> None:
    resp = client.post("/api/kill-switch", json={"agent_id": agent_id, "flatten": flatten})
    assert error_of(resp)["field"] == "flatten"
    assert client.get(f"/api/agents/{agent_id}").json()["status"] != "stopped"


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/api/trades", {"agent_id": ""}),
        ("GET", "/api/decisions", {"agent_id": " "}),
        ("GET", "/api/orders", {"agent_id": ""}),
        ("GET", "/api/leaderboard", {"session_id": ""}),
        ("GET", "/api/agents/%20", {}),
        ("POST", "/api/agents/%20/pause", {}),
        ("POST", "/api/decisions/%20/approve", {}),
        ("DELETE", "/api/orders/%20", {}),
        ("GET", "/api/sessions/%20", {}),
    ],
)
def test_empty_identifiers_are_a_4xx(
    client: httpx.Client, method: str, path: str, params: dict[str, str]
) -> None:
    error_of(client.request(method, path, params=params))


# -- 6. money and names ------------------------------------------------------------------------
NOT_MONEY = [
    "\u0661\u0662",
    "1_000",
    " 12",
    "12 ",
    "0x10",
    "1,000",
    "12e",
    "--1",
    "12.5.1",
    "\u0967",
]


@pytest.mark.parametrize("amount", NOT_MONEY)
def test_only_ascii_decimal_notation_is_money(
    client: httpx.Client, agent_id: str, amount: str
) -> None:
    before = client.get(f"/api/agents/{agent_id}").json()["wallet"]["deposits"]
    resp = client.post(f"/api/agents/{agent_id}/deposit", json={"amount": amount})
    assert error_of(resp)["field"] == "amount"
    assert client.get(f"/api/agents/{agent_id}").json()["wallet"]["deposits"] == before


def test_ascii_decimals_are_still_money(client: httpx.Client, agent_id: str) -> None:
    before = client.get(f"/api/agents/{agent_id}").json()["wallet"]["deposits"]
    for amount in ("12", "0.5", 2, "1E+1"):
        resp = client.post(f"/api/agents/{agent_id}/deposit", json={"amount": amount})
        assert resp.status_code == 200, resp.text
    after = client.get(f"/api/agents/{agent_id}").json()["wallet"]["deposits"]
    assert float(after) - float(before) == pytest.approx(24.5)


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("quantity", {"quantity": "\u0661"}),
        ("notional", {"notional": "1_000"}),
        ("limit_price", {"type": "limit", "quantity": "1", "limit_price": "1_000"}),
        ("stop_price", {"type": "stop", "quantity": "1", "stop_price": "\u0661\u0660"}),
    ],
)
def test_order_sizes_and_prices_are_ascii_decimals(
    client: httpx.Client, agent_id: str, field: str, body: dict[str, Any]
) -> None:
    resp = client.post(
        f"/api/agents/{agent_id}/orders", json={"action": "buy", "symbol": "BTC", **body}
    )
    assert error_of(resp)["field"] == field


def test_allowance_and_session_cash_are_ascii_decimals(client: httpx.Client) -> None:
    agent = {"name": "loose", "brain": "rsi", "symbols": ["BTC"], "allowance": "1_000"}
    assert error_of(client.post("/api/agents", json=agent))["field"] == "allowance"
    risk = {**agent, "allowance": "1000", "risk": {"max_allocation_pct": "\u0662\u0660"}}
    assert error_of(client.post("/api/agents", json=risk))["field"] == "risk.max_allocation_pct"
    session = {
        "name": "loose",
        "symbols": ["BTC"],
        "cash": "1_000",
        "agents": [{"name": "a", "brain": "rsi"}],
        "replay": WINDOW,
    }
    assert error_of(client.post("/api/sessions", json=session))["field"] == "cash"


@pytest.mark.parametrize("name", [" ", "   ", "\t"])
def test_a_blank_name_is_refused_everywhere(client: httpx.Client, name: str) -> None:
    agent = {"name": name, "brain": "rsi", "symbols": ["BTC"]}
    assert error_of(client.post("/api/agents", json=agent))["field"] == "name"
    endpoint = {"name": name, "kind": "ollama", "base_url": "http://127.0.0.1:11434"}
    assert error_of(client.post("/api/llm/endpoints", json=endpoint))["field"] == "name"
    session = {"name": name, "symbols": ["BTC"], "agents": [{"name": "a", "brain": "rsi"}]}
    assert error_of(client.post("/api/sessions", json={**session, "replay": WINDOW}))["field"] == (
        "name"
    )
    member = {**session, "name": "ok", "agents": [{"name": name, "brain": "rsi"}]}
    assert error_of(client.post("/api/sessions", json={**member, "replay": WINDOW}))["field"] == (
        "agents.0.name"
    )


def test_names_are_stripped(client: httpx.Client) -> None:
    body = {"name": "  Padded Pete  ", "brain": "rsi", "symbols": ["BTC"]}
    created = client.post("/api/agents", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Padded Pete"
    assert client.delete(f"/api/agents/{created.json()['id']}").status_code == 200


# -- 9. unknown query parameters ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params", "unknown"),
    [
        ("/api/trades", {"agent": "x"}, "agent"),
        ("/api/decisions", {"agent_id": "x", "stauts": "pending"}, "stauts"),
        ("/api/agents", {"limit": "5"}, "limit"),
        ("/api/market/history", {"symbol": "BTC", "bars": "10"}, "bars"),
        ("/api/leaderboard", {"metric": "sharpe"}, "metric"),
        ("/health", {"verbose": "1"}, "verbose"),
    ],
)
def test_unknown_query_parameters_are_refused_by_name(
    client: httpx.Client, path: str, params: dict[str, str], unknown: str
) -> None:
    error = error_of(client.get(path, params=params))
    assert error["field"] == unknown and "unknown query parameter" in error["message"]


def test_known_query_parameters_still_work(client: httpx.Client, agent_id: str) -> None:
    resp = client.get("/api/trades", params={"agent_id": agent_id, "limit": 5, "offset": 0})
    assert resp.status_code == 200
    assert all(t["agent_id"] == agent_id for t in resp.json()["trades"])


# -- 7. the request body limit -----------------------------------------------------------------
def raw_exchange(port: int, head: bytes, chunks: list[bytes] = []) -> tuple[int, bytes]:  # noqa: B006
    """Send ``head`` and ``chunks`` over a plain socket; the response's status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            part = sock.recv(65536)
            if not part:
                break
            data += part
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def _length(data: bytes) -> int:
    match = re.search(rb"(?im)^content-length:\s*(\d+)", data.partition(b"\r\n\r\n")[0])
    return int(match.group(1)) if match else 0


def _head(port: int, extra: str) -> bytes:
    return (
        f"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    running_server: ServerHandle,
) -> None:
    """Only the head is sent: the server answers 413 without waiting for the body."""
    head = _head(running_server.port, f"Content-Length: {LIMIT + 1}\r\n")
    status, body = raw_exchange(running_server.port, head)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "body_too_large"


def test_a_chunked_body_over_the_limit_is_refused(running_server: ServerHandle) -> None:
    piece = b"x" * 65536
    count = LIMIT // len(piece) + 1  # just over the limit
    chunks = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for _ in range(count)]
    head = _head(running_server.port, "Transfer-Encoding: chunked\r\n")
    status, body = raw_exchange(running_server.port, head, chunks)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "body_too_large"
    assert httpx.get(f"{running_server.url}/health", timeout=TIMEOUT).status_code == 200


def test_a_body_at_the_limit_is_read(client: httpx.Client) -> None:
    filler = "x" * (LIMIT - len('{"password": ""}'))
    resp = client.post(
        "/api/auth/login",
        content=f'{{"password": "{filler}"}}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 422 and error_of(resp)["field"] == "password"
    chunked = client.post(
        "/api/auth/login",
        content=iter([b'{"password": "', filler.encode(), b'"}']),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 422, chunked.text


# -- 8. forwarded headers ----------------------------------------------------------------------
def test_x_forwarded_for_from_loopback_does_not_reset_the_login_limit(tmp_path: Path) -> None:
    """No proxy is configured: the header is a client's claim and is ignored. (And /health,
    open to anyone, tells an unauthenticated caller only the kinds of what start-up skipped.)"""
    password_hash = PasswordHasher().hash("right horse battery")
    env = {"PHANTOMEX_AUTH_PASSWORD_HASH": password_hash, "PHANTOMEX_SOURCES": '["replay", "x"]'}
    with (
        serve(tmp_path / "data", **env) as srv,
        httpx.Client(base_url=srv.url, timeout=TIMEOUT) as c,
    ):
        assert c.get("/health").json()["problems"] == [{"kind": "source"}]
        for _ in range(5):
            assert c.post("/api/auth/login", json={"password": "wrong"}).status_code == 401
        for ip in ("203.0.113.7", "198.51.100.1, 203.0.113.9"):
            forged = {"X-Forwarded-For": ip, "X-Real-IP": ip}
            resp = c.post("/api/auth/login", json={"password": "wrong"}, headers=forged)
            assert resp.status_code == 429, resp.text


# -- 12. API docs without a network ------------------------------------------------------------
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_every_asset_from_this_server(client: httpx.Client, page: str) -> None:
    resp = client.get(page)
    assert resp.status_code == 200
    html = resp.text
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    refs += re.findall(r"""url\s*:\s*["']([^"']+)["']""", html)  # the schema's URL
    assert len(refs) >= 2, html
    hosts = {urlsplit(urljoin(str(resp.url), ref)).netloc for ref in refs}
    assert hosts == {urlsplit(str(client.base_url)).netloc}, refs
    assert not re.search(r"https?://(?!127\.0\.0\.1)", html.replace("http://www.w3.org", ""))
    for ref in refs:
        asset = client.get(urljoin(str(resp.url), ref))
        assert asset.status_code == 200 and len(asset.content) > 100, ref
