"""Authentication against a real server bound to 0.0.0.0 with a password and API tokens set
through the CLI: what is open, what needs credentials, cookies and CSRF, the WebSocket, token
revocation, the login rate limit, and the refusal to bind publicly without auth."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from conftest import CLI, ServerHandle, free_port, run_cli, serve, server_env

from phantomex.auth.policy import exposure_problem, is_loopback

PASSWORD = "correct horse battery staple"
TIMEOUT = 60  # seconds; argon2 on a busy machine is slow


def cli_input(env: dict[str, str], stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=90
    )


def create_token(env: dict[str, str], name: str, *flags: str) -> str:
    rc, out, err = run_cli("auth", "token", "create", name, *flags, env=env)
    assert rc == 0, err
    token = out.strip()
    assert token.startswith("phx_")
    return token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    data_dir = tmp_path_factory.mktemp("auth")
    env = server_env(free_port(), data_dir)
    done = cli_input(env, PASSWORD + "\n", "auth", "set-password", "--password-stdin")
    assert done.returncode == 0, done.stderr
    create_token(env, "cli", "--save")
    # the tests stand in for clients at other addresses through a proxy on loopback
    proxy = '["127.0.0.1"]'
    with serve(data_dir, PHANTOMEX_HOST="0.0.0.0", PHANTOMEX_TRUSTED_PROXIES=proxy) as handle:
        yield handle


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def saved_token(server: ServerHandle) -> str:
    return (server.data_dir / "cli.token").read_text().strip()


def login(client: httpx.Client, password: str = PASSWORD, ip: str = "10.1.0.1") -> httpx.Response:
    return client.post(
        "/api/auth/login", json={"password": password}, headers={"X-Forwarded-For": ip}
    )


def test_refuses_a_public_address_without_auth(tmp_path: Path) -> None:
    env = server_env(free_port(), tmp_path, PHANTOMEX_HOST="0.0.0.0")
    rc, _out, err = run_cli("start", env=env, timeout=60)
    assert rc != 0
    assert "refusing to listen on 0.0.0.0" in err
    assert "phantomex auth set-password" in err
    env["PHANTOMEX_HOST"] = "127.0.0.1"
    env["PHANTOMEX_AUTH"] = "true"
    rc, _out, err = run_cli("start", env=env, timeout=60)
    assert rc != 0
    assert "no password or token exists" in err


def test_health_and_page_are_open_the_api_is_not(server: ServerHandle) -> None:
    assert httpx.get(f"{server.url}/health", timeout=TIMEOUT).status_code == 200
    assert httpx.get(f"{server.url}/", timeout=TIMEOUT).status_code == 200
    state = httpx.get(f"{server.url}/api/auth/session", timeout=TIMEOUT).json()
    assert state == {
        "auth_enabled": True,
        "authenticated": False,
        "method": None,
        "password_login": True,
        "expires_at": None,
        "csrf_token": None,
    }
    for method, path in [
        ("GET", "/api/agents"),
        ("GET", "/metrics"),
        ("POST", "/api/kill-switch"),
        ("DELETE", "/api/orders/x"),
        ("GET", "/api/nothing-here"),
    ]:
        resp = httpx.request(method, f"{server.url}{path}", timeout=TIMEOUT)
        assert resp.status_code == 401, path
        assert resp.json()["error"]["code"] == "unauthorized"
        assert resp.headers["www-authenticate"] == "Bearer"
    resp = httpx.get(
        f"{server.url}/api/agents", timeout=TIMEOUT, headers=bearer("phx_not-a-real-token")
    )
    assert resp.status_code == 401
    health = httpx.get(f"{server.url}/health", timeout=TIMEOUT).json()
    assert health["kill_switch"] is False  # the refused POST changed nothing


def test_token_opens_the_api_and_the_cli_uses_it(server: ServerHandle) -> None:
    resp = httpx.get(
        f"{server.url}/api/agents", timeout=TIMEOUT, headers=bearer(saved_token(server))
    )
    assert resp.status_code == 200
    assert len(resp.json()) == 3  # the demo agents
    rc, out, err = server.cli("agents", "list", "--json")
    assert rc == 0, err
    assert len(json.loads(out)) == 3
    env = {**server.env, "PHANTOMEX_TOKEN": "phx_wrong"}
    rc, _out, err = run_cli("agents", "list", env=env)
    assert rc == 1
    assert "authentication required" in err


def test_a_loopback_server_turns_auth_on_once_the_cli_creates_a_token(tmp_path: Path) -> None:
    """On 127.0.0.1 without credentials the API is open; the first token (created by another
    process, the CLI) closes it within a moment, without a restart."""
    with serve(tmp_path / "loopback") as server:
        assert httpx.get(f"{server.url}/api/agents", timeout=TIMEOUT).status_code == 200
        token = create_token(server.env, "script")
        deadline = time.monotonic() + 30
        while (status := httpx.get(f"{server.url}/api/agents", timeout=TIMEOUT).status_code) == 200:
            assert time.monotonic() < deadline, "auth still off 30 s after the first token"
            time.sleep(0.2)
        assert status == 401
        resp = httpx.get(f"{server.url}/api/agents", timeout=TIMEOUT, headers=bearer(token))
        assert resp.status_code == 200


def test_cookie_login_needs_csrf_for_mutations(server: ServerHandle) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        bad = login(client, "wrong password", ip="10.2.0.1")
        assert bad.status_code == 401
        assert bad.json()["error"]["code"] == "invalid_credentials"
        assert "phantomex_session" not in client.cookies
        resp = login(client, ip="10.2.0.1")
        assert resp.status_code == 200
        csrf = resp.json()["csrf_token"]
        cookies = resp.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("phantomex_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session
        assert "Secure" not in session  # plain http; https (or cookie_secure) adds it
        readable = next(c for c in cookies if c.startswith("phantomex_csrf="))
        assert "HttpOnly" not in readable
        assert client.get("/api/agents").status_code == 200
        assert client.get("/api/auth/session").json()["method"] == "session"
        refused = client.post("/api/kill-switch/release")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf"
        wrong = client.post("/api/kill-switch/release", headers={"X-CSRF-Token": "x" * 64})
        assert wrong.status_code == 403
        ok = client.post("/api/kill-switch/release", headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200
        assert client.post("/api/auth/logout").status_code == 200
        assert client.get("/api/agents").status_code == 401


def test_a_stolen_cookie_is_dead_after_logout(server: ServerHandle) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert login(client, ip="10.3.0.1").status_code == 200
        session = client.cookies["phantomex_session"]
        client.post("/api/auth/logout")
    resp = httpx.get(
        f"{server.url}/api/agents", timeout=TIMEOUT, cookies={"phantomex_session": session}
    )
    assert resp.status_code == 401


async def _ws_first(url: str, **kwargs: object) -> dict[str, object]:
    async with websockets.connect(url, open_timeout=10, **kwargs) as ws:  # type: ignore[arg-type]
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))


def test_websocket_needs_auth(server: ServerHandle) -> None:
    url = server.url.replace("http", "ws") + "/ws"
    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(_ws_first(url))
    assert refused.value.response.status_code == 403
    first = asyncio.run(_ws_first(url, additional_headers=bearer(saved_token(server))))
    assert first["type"] == "snapshot"
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert login(client, ip="10.4.0.1").status_code == 200
        cookie = f"phantomex_session={client.cookies['phantomex_session']}"
    host = server.url.split("://")[1]
    same_site = {"Cookie": cookie}
    first = asyncio.run(_ws_first(url, additional_headers=same_site, origin=f"http://{host}"))
    assert first["type"] == "snapshot"
    with pytest.raises(websockets.InvalidStatus):
        asyncio.run(_ws_first(url, additional_headers=same_site, origin="http://evil.example"))


def test_revoked_token_is_refused_at_once(server: ServerHandle) -> None:
    token = create_token(server.env, "script")
    assert (
        httpx.get(f"{server.url}/api/agents", timeout=TIMEOUT, headers=bearer(token)).status_code
        == 200
    )
    rc, out, err = server.cli("auth", "token", "list", "--json")
    assert rc == 0 and '"script"' in out and token not in out
    rc, out, err = server.cli("auth", "token", "revoke", "script")
    assert rc == 0, err
    assert (
        httpx.get(f"{server.url}/api/agents", timeout=TIMEOUT, headers=bearer(token)).status_code
        == 401
    )
    rc, out, err = server.cli("auth", "token", "revoke", "script")
    assert rc == 1 and "no active token" in err


def test_login_is_rate_limited_per_address(server: ServerHandle) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(5):
            assert login(client, "nope", ip="10.9.9.9").status_code == 401
        limited = login(client, ip="10.9.9.9")  # even the right password now waits
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert login(client, ip="10.9.9.10").status_code == 200  # another address is not


def test_bad_login_bodies_are_4xx(server: ServerHandle) -> None:
    for body in [None, {}, {"password": ""}, {"password": 5}, {"password": "x", "extra": 1}]:
        resp = httpx.post(f"{server.url}/api/auth/login", timeout=TIMEOUT, json=body)
        assert resp.status_code == 422, body
        assert resp.json()["error"]["code"] == "validation_error"


def test_no_secret_reaches_the_database_or_the_log(server: ServerHandle) -> None:
    token = saved_token(server)
    stored = b"".join(p.read_bytes() for p in server.data_dir.glob("phantomex.db*") if p.is_file())
    assert stored, "the database files exist"
    for secret in (PASSWORD, token):
        assert secret.encode() not in stored
        assert secret not in server.server_output()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("phantomex.example", False),
    ],
)
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert (exposure_problem(host, auth_configured=False) is None) is loopback
    assert exposure_problem(host, auth_configured=True) is None
