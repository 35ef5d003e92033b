"""The whole ``phantomex`` app (Typer): run the server and drive it over its REST API. The
command starts in :mod:`phantomex.cli.main`, which hands a plain research backtest to
:mod:`phantomex.cli.lean` and everything else to this app."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from phantomex.cli import agents as agents_cli
from phantomex.cli import audit as audit_mod
from phantomex.cli import auth as auth_cli
from phantomex.cli import backtest_command as backtest_cli
from phantomex.cli import data as data_cli
from phantomex.cli import db as db_cli
from phantomex.cli import decisions as decisions_cli
from phantomex.cli import exchange as exchange_cli
from phantomex.cli import llm as llm_cli
from phantomex.cli import llm_endpoints as llm_endpoints_cli
from phantomex.cli import mcp_cmd as mcp_cli
from phantomex.cli import news as news_cli
from phantomex.cli import notify as notify_cli
from phantomex.cli import optimize as optimize_cli
from phantomex.cli import orders as orders_cli
from phantomex.cli import secrets_cmd as secrets_cli
from phantomex.cli import server
from phantomex.cli import servers as servers_cli
from phantomex.cli import session as session_cli
from phantomex.cli import sources as sources_cli
from phantomex.cli.client import Api, ApiError, NotRunning, fail, not_running_message
from phantomex.cli.options import AgentArg, DataDirOpt, JsonOpt, YesOpt
from phantomex.cli.output import (
    agents_table,
    console,
    decision_table,
    prices_table,
    print_json,
    say,
    strategies_table,
    trades_table,
)
from phantomex.cli.profiles import ProfileError, Profiles
from phantomex.cli.remote import commands as remote_cli
from phantomex.cli.settings_arg import settings_from
from phantomex.domain.inputs import parse_decimal
from phantomex.formatting import money, when

if TYPE_CHECKING:
    from phantomex.config import Settings


class _Phantomex(typer.Typer):
    """The ``phantomex`` app. Started as ``phantomex backtest ...`` or ``phantomex optimize ...``
    it builds that one command: Typer builds every command's options from its signature when
    it starts (~50 ms for all of them), a research run's start-up is worth sparing that."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        register = _ALONE.get(sys.argv[1]) if len(sys.argv) > 1 and not args else None
        if register is None or "args" in kwargs:
            return super().__call__(*args, **kwargs)
        alone = typer.Typer(**_APP)
        alone.callback()(main)
        register(alone)
        return alone(*args, **kwargs)


_APP: dict[str, Any] = {
    "name": "phantomex",
    "help": "PhantomEx: AI and rule agents paper-trading on real or replayed prices.",
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_show_locals": False,
}
app = _Phantomex(**_APP)


@dataclass
class _Global:
    url: str | None = None
    server: str | None = None  # a server profile's name (``--server``)


GLOBAL = _Global()


# -- settings and the server's client --------------------------------------------------------------
def api_for(settings: Settings) -> Api:
    """The client of the server that ``settings`` name, or of ``--server``'s profile (its URL
    and token), or of ``--url``."""
    if GLOBAL.server:
        try:
            profile = Profiles().get(GLOBAL.server)
        except ProfileError as exc:
            fail(f"error: --server: {exc}")
        return Api(profile.url, token=profile.token)
    return Api(GLOBAL.url or settings.base_url, token=auth_cli.cli_token(settings))


def api() -> Api:
    return api_for(settings_from())


def local_only(command: str) -> None:
    """Refuse ``--server`` for a command that acts on this machine's server (its pid file)."""
    if GLOBAL.server:
        fail(
            f"error: `{command}` acts on the server of this machine, not on --server "
            f"{GLOBAL.server}: use `phantomex server {command} --host HOST` for another machine"
        )


@app.callback()
def main(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="PHANTOMEX_URL",
            help="Server address (default: http://PHANTOMEX_HOST:PHANTOMEX_PORT).",
            show_default=False,
        ),
    ] = None,
    server_name: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="PHANTOMEX_SERVER",
            help="A server profile (see `phantomex servers`): its URL and token.",
            show_default=False,
        ),
    ] = None,
) -> None:
    if url and server_name:
        fail("error: give --url or --server, not both")
    GLOBAL.url = url.rstrip("/") if url else None
    GLOBAL.server = server_name


# -- server ----------------------------------------------------------------------------------------
def _start(
    *,
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    no_demo: bool,
    speed: float | None,
    daemon: bool,
) -> None:
    local_only("start")
    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "demo": False if no_demo else None,
        "replay_speed": speed,
    }
    settings = settings_from(**overrides)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create the data directory {settings.data_dir}: {exc.strerror or exc}")
    pid = server.running_pid(settings)
    if pid is not None and pid != os.getpid():
        say(f"PhantomEx is already running (pid {pid}) at {settings.base_url}")
        raise typer.Exit(0 if daemon else 1)
    problem = server.bind_problem(settings.host, settings.port) or auth_cli.start_problem(settings)
    if problem:
        other = " (a PhantomEx server answers there)" if server.health(settings.base_url) else ""
        fail(f"cannot start PhantomEx: {problem}{other}")
    if not daemon:
        server.run_foreground(settings)
        return
    proc = server.spawn_daemon(settings, server.child_env(settings, overrides))
    if server.wait_healthy(proc, settings.base_url):
        say(f"PhantomEx started (pid {proc.pid}) at {settings.base_url}")
        say(f"logs: {settings.log_file}")
        return
    if proc.poll() is None:
        server.stop_pid(proc.pid, timeout=5)
    proc.wait()
    server.remove_pid_file(settings, proc.pid)
    tail = "\n".join(server.tail_lines(settings.log_file, 15))
    fail(
        f"PhantomEx did not come up at {settings.base_url} within {server.START_TIMEOUT:.0f} s "
        f"(exit code {proc.returncode}); the end of {settings.log_file}:\n{tail}"
    )


def _stop(data_dir: Path | None) -> bool:
    """Stop the server of ``data_dir``'s pid file; False if none was running."""
    local_only("stop")
    settings = settings_from(data_dir=data_dir)
    pid = server.running_pid(settings)
    if pid is None:
        say(f"PhantomEx is not running (no live process in {settings.pid_file})")
        return False
    graceful = server.stop_pid(pid)
    server.remove_pid_file(settings, pid)
    say(f"PhantomEx stopped (pid {pid})" + ("" if graceful else "; killed after no clean exit"))
    return True


HostOpt = Annotated[str | None, typer.Option(help="Address to bind.", show_default=False)]
PortOpt = Annotated[int | None, typer.Option(help="Port to listen on.", show_default=False)]
NoDemoOpt = Annotated[
    bool, typer.Option("--no-demo", help="Do not create the demo agents on an empty database.")
]
SpeedOpt = Annotated[
    float | None,
    typer.Option(
        "--speed", help="Replay speed: market seconds per wall second (0: max).", show_default=False
    ),
]


@app.command()
def start(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    no_demo: NoDemoOpt = False,
    speed: SpeedOpt = None,
    daemon: Annotated[
        bool, typer.Option("--daemon", "-d", help="Run in the background; log to the log file.")
    ] = False,
) -> None:
    """Start the server (in the foreground unless --daemon)."""
    _start(host=host, port=port, data_dir=data_dir, no_demo=no_demo, speed=speed, daemon=daemon)


@app.command()
def stop(data_dir: DataDirOpt = None) -> None:
    """Stop the background server (SIGTERM, then SIGKILL after 15 s)."""
    _stop(data_dir)


@app.command()
def restart(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    no_demo: NoDemoOpt = False,
    speed: SpeedOpt = None,
) -> None:
    """Stop the server if it runs, then start it in the background."""
    _stop(data_dir)
    _start(host=host, port=port, data_dir=data_dir, no_demo=no_demo, speed=speed, daemon=True)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Server health and every agent's equity and P&L."""
    client = api()
    health = client.get("/health")
    agents = client.agents()
    if as_json:
        print_json({"url": client.url, "health": health, "agents": agents})
        return
    kill = "ON" if health.get("kill_switch") else "off"
    clock = when(health.get("clock")) if health.get("clock") else "not started"
    say(
        f"PhantomEx is running at {client.url} — market clock {clock}, "
        f"{health.get('ticks')} ticks, kill switch {kill}"
    )
    _say_problems(health.get("problems") or [])
    console.print(agents_table(agents))


def _say_problems(problems: list[dict[str, Any]]) -> None:
    """What start-up skipped (the server runs without it), and how to fix each."""
    if problems:
        say(
            f"{len(problems)} item(s) skipped at start-up (the server runs without them):", "yellow"
        )
    for p in problems:
        ident = f" ({p['id']})" if p.get("id") else ""
        say(f"  {p.get('kind')} {p.get('name', '')}{ident}: {p.get('reason', '')}", "yellow")
        if p.get("fix"):
            say(f"    fix: {p['fix']}")


@app.command()
def logs(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Lines to show.")] = 50,
    data_dir: DataDirOpt = None,
) -> None:
    """Show the end of the server log (written by `start --daemon`)."""
    local_only("logs")
    settings = settings_from(data_dir=data_dir)
    path = settings.log_file
    if not path.exists():
        fail(f"no log file at {path} (it is written by `phantomex start --daemon`)")
    for line in server.tail_lines(path, lines):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    if not follow:
        return
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            while True:
                chunk = f.read()
                if chunk:
                    sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                    sys.stdout.flush()
                    continue
                if path.exists() and path.stat().st_size < f.tell():
                    f.seek(0)  # truncated
                time.sleep(0.3)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


# -- trading ---------------------------------------------------------------------------------------
@app.command()
def trade(agent: AgentArg, as_json: JsonOpt = False) -> None:
    """Make an agent decide now (still subject to risk checks and its mode)."""
    client = api()
    a = client.resolve_agent(agent)
    rec = client.post(f"/api/agents/{a['id']}/trade")
    if as_json:
        print_json(rec)
        return
    console.print(decision_table(rec, a["name"]))


@app.command(context_settings={"ignore_unknown_options": True})
def deposit(
    agent: AgentArg,
    amount: Annotated[str, typer.Argument(help="USD to add to the agent's cash.")],
    as_json: JsonOpt = False,
) -> None:
    """Add paper cash to an agent's wallet."""
    try:  # thousands separators are fine; digits must be ASCII, as in the API
        value = parse_decimal(amount.strip().replace(",", "").replace("_", ""))
    except ValueError:
        fail(f"error: amount: must be a finite number in ASCII digits, got {amount!r}")
    client = api()
    a = client.resolve_agent(agent)
    out = client.post(f"/api/agents/{a['id']}/deposit", {"amount": format(value, "f")})
    if as_json:
        print_json(out)
        return
    w = out["wallet"]
    say(
        f"deposited {money(value, exact=True)} into {out['name']}: cash {money(w['cash'])}, "
        f"equity {money(w['equity'])}"
    )


@app.command()
def prices(as_json: JsonOpt = False) -> None:
    """Latest price of every symbol."""
    rows = api().get("/api/market/prices")
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("no prices yet: the market feed has not started")
        return
    console.print(prices_table(rows))


@app.command()
def trades(
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Only this agent.")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Only this symbol.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Executed trades, newest first."""
    client = api()
    agent_id = client.resolve_agent(agent)["id"] if agent else None
    page = client.get("/api/trades", agent_id=agent_id, symbol=symbol, limit=limit, offset=offset)
    if as_json:
        print_json(page)
        return
    console.print(trades_table(page["trades"], page["total"], offset))


@app.command()
def strategies(as_json: JsonOpt = False) -> None:
    """Strategies an agent can use, with their parameters."""
    rows = api().get("/api/strategies")
    if as_json:
        print_json(rows)
        return
    console.print(strategies_table(rows))


# -- risk ------------------------------------------------------------------------------------------
def _release(client: Api, as_json: bool) -> None:
    out = client.post("/api/kill-switch/release")
    if as_json:
        print_json(out)
        return
    say("kill switch released; stopped agents stay stopped until `phantomex agents resume`")


@app.command()
def kill(
    agent: Annotated[
        str | None, typer.Option("--agent", "-a", help="Only this agent (default: all).")
    ] = None,
    flatten: Annotated[bool, typer.Option(help="Also close every open position.")] = False,
    release: Annotated[bool, typer.Option("--release", help="Lift the kill switch.")] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Emergency stop: agents stop deciding and pending approvals are cancelled."""
    client = api()
    if release:
        if agent or flatten:
            fail("error: --release takes no --agent or --flatten")
        _release(client, as_json)
        return
    target = client.resolve_agent(agent) if agent else None
    what = f"agent {target['name']}" if target else "ALL agents"
    if not yes:
        closing = " and close their positions" if flatten else ""
        typer.confirm(f"Stop {what}{closing}?", abort=True)
    out = client.post(
        "/api/kill-switch", {"agent_id": target["id"] if target else None, "flatten": flatten}
    )
    if as_json:
        print_json(out)
        return
    n = len(out.get("agents", []))
    say(
        f"kill switch {'ON' if out.get('on') else 'applied'} for {what}: {n} agent(s) stopped"
        + (", positions closed" if flatten else ""),
        "red",
    )
    if out.get("on"):
        say("lift it with `phantomex kill --release`")


@app.command("release")
def release_cmd(as_json: JsonOpt = False) -> None:
    """Lift the global kill switch (same as `kill --release`)."""
    _release(api(), as_json)


# -- audit -----------------------------------------------------------------------------------------
@app.command()
def audit(
    offline: Annotated[
        bool, typer.Option("--offline", help="Read the database even if the server answers.")
    ] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every wallet against a rebuild from its fills and deposits (exit 1 on a mismatch)."""
    settings = settings_from(data_dir=data_dir)
    client = api_for(settings)
    result: dict[str, Any] | None = None
    names: dict[str, str] = {}
    if not offline:
        try:
            result = client.request("GET", "/api/audit")
            names = {a["id"]: a["name"] for a in client.request("GET", "/api/agents")}
        except NotRunning:
            if GLOBAL.server:  # the profile's server is down: this machine's database is not it
                fail(not_running_message(client.url))
            result = None
        except ApiError as exc:
            fail(str(exc))
    if result is None:
        try:
            res, names = audit_mod.offline_audit(settings)
        except audit_mod.AuditUnavailable as exc:
            hint = "" if offline else f" ({not_running_message(client.url)})"
            fail(f"cannot audit: {exc}{hint}")
        result = {"ok": res.ok, "agents": res.wallets, "mismatches": res.mismatches}
        result["offline"] = True
    if as_json:
        print_json(result)
    else:
        where = "offline, from the database" if result.get("offline") else "on the running server"
        mismatches = result.get("mismatches", [])
        if not mismatches:
            say(
                f"audit passed: {result.get('agents')} wallets reconcile with their history "
                f"({where})",
                "green",
            )
        else:
            say(f"audit FAILED: {len(mismatches)} mismatch(es) ({where})", "red")
            for m in mismatches:
                say(f"  {audit_mod.describe(m, names)}")
    if result.get("mismatches"):
        raise typer.Exit(1)


agents_cli.register(app, api)
decisions_cli.register(app, api)
llm_cli.register(app)
llm_endpoints_cli.register(app, api)
orders_cli.register(app, api)
mcp_cli.register(app, api)
notify_cli.register(app)
auth_cli.register(app)
secrets_cli.register(app)
backtest_cli.register(app)
data_cli.register(app)
news_cli.register(app)
optimize_cli.register(app)
session_cli.register(app, api)
sources_cli.register(app, api)
exchange_cli.register(app, api)
db_cli.register(app, settings_from, api_for)
servers_cli.register(app)
remote_cli.register(app)

#: The commands ``phantomex`` builds alone when started with them (see :class:`_Phantomex`).
_ALONE: dict[str, Callable[[typer.Typer], None]] = {
    "backtest": backtest_cli.register,
    "optimize": optimize_cli.register,
}
