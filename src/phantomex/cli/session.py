"""``phantomex session start|stop|list|show`` and ``phantomex leaderboard`` (over the API)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.text import Text

from phantomex.cli.backtest import parse_assignments, parse_when
from phantomex.cli.client import Api, fail
from phantomex.cli.fittable import FitTable, key, text
from phantomex.cli.output import console, print_json, say, signed_money, signed_pct
from phantomex.formatting import money, number, percent, when
from phantomex.serialize import iso

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
SessionArg = Annotated[str, typer.Argument(help="Session id (or unique prefix) or name.")]
AGENT_HELP = (
    "NAME=BRAIN[:key=value,...], repeatable: e.g. ruby=rsi:period=10, "
    "max=sma_cross:fast=10,slow=30, bot=llm:endpoint=local,model=qwen2.5:7b. "
    "interval=SECONDS sets the time between decisions."
)


def parse_agent(text: str) -> dict[str, Any]:
    """One ``--agent`` option as the API's agent object."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise ValueError(f"--agent must look like NAME=BRAIN[:key=value,...], got {text!r}")
    brain, _, args = rest.partition(":")
    items = [a for a in _split_args(args) if a]
    params = parse_assignments(items, "--agent parameters")
    agent: dict[str, Any] = {"name": name.strip(), "brain": brain.strip()}
    interval = params.pop("interval", None)
    if interval is not None:
        agent["interval_seconds"] = interval
    agent["params"] = params
    return agent


def _split_args(args: str) -> list[str]:
    """``a=1,b=x:y`` → ``["a=1", "b=x:y"]`` (a comma starts a new pair only before ``key=``)."""
    out: list[str] = []
    for part in args.split(","):
        if out and "=" not in part:
            out[-1] += "," + part
        else:
            out.append(part.strip())
    return out


def resolve_session(client: Api, ref: str) -> str:
    sessions: list[dict[str, Any]] = client.get("/api/sessions")
    needle = ref.strip()
    for s in sessions:
        if s["id"] == needle:
            return str(s["id"])
    named = [s for s in sessions if s["name"].casefold() == needle.casefold()]
    if named:
        return str(named[0]["id"])  # the newest with that name
    hits = [s for s in sessions if needle and s["id"].startswith(needle.lower())]
    if len(hits) == 1:
        return str(hits[0]["id"])
    if len(hits) > 1:
        fail(f"session id prefix {ref!r} is ambiguous: matches {len(hits)} sessions")
    fail(f"no session with id or name {ref!r} (see `phantomex session list`)")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}"


def _pct(value: float | None, digits: int = 2) -> str:
    return percent(value, fraction=True, places=digits)


def sessions_table(sessions: list[dict[str, Any]]) -> FitTable:
    table = FitTable(
        key("id"),
        text("name", min_width=8),
        key("kind"),
        key("status"),
        text("window", min_width=12),
        key("elapsed", right=True),
        key("remaining", right=True),
        text("leader", min_width=8),
        title="Sessions",
    )
    for s in sessions:
        agents = [a for a in s["agents"] if a["role"] == "agent"]
        best = max(agents, key=lambda a: a["return_pct"], default=None)
        w = s["window"]
        leader = Text(f"{best['name']} ").append(signed_pct(best["return_pct"])) if best else None
        table.add_row(
            s["id"][:8],
            s["name"],
            s["kind"],
            s["status"],
            f"{' '.join(w['symbols'])} {when(w['start'])} → {when(w['end'])}",
            _duration(s["elapsed_seconds"]),
            _duration(s["remaining_seconds"]),
            leader,
        )
    return table


def session_agents_table(s: dict[str, Any]) -> FitTable:
    title = (
        f"{s['name']} ({s['kind']}, {s['status']}, {s['progress'] * 100:.0f}%: "
        f"{_duration(s['elapsed_seconds'])} elapsed, {_duration(s['remaining_seconds'])} left)"
    )
    table = FitTable(
        text("agent", min_width=8),
        text("brain", min_width=8),
        key("equity", right=True),
        key("P&L", right=True),
        key("return", right=True),
        key("trades", right=True),
        key("max DD", right=True),
        key("status"),
        title=title,
    )
    for a in s["agents"]:
        m = a.get("metrics") or {}
        brain = a["spec"].get("brain", "")
        if brain == "llm":
            brain = f"llm:{a['spec'].get('params', {}).get('model')}"
        table.add_row(
            a["name"],
            brain,
            money(a["equity_now"]),
            signed_money(a["pnl"]),
            signed_pct(a["return_pct"]),
            str(a["trade_count"]) if a["role"] == "agent" else None,
            _pct(m.get("max_drawdown")),
            a["status"],
        )
    return table


def _cell(fig: dict[str, Any], fmt: Callable[[float | None], str]) -> str:
    ci = fig.get("ci")
    value = fmt(fig.get("value"))
    return f"{value} [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else value


def leaderboard_tables(board: dict[str, Any]) -> list[FitTable]:
    tables = []
    for i, g in enumerate(board["groups"], start=1):
        windows = "; ".join(
            f"{w['source']} {' '.join(w['symbols'])} {when(w['start'])} → {when(w['end'])}"
            for w in g["windows"]
        )
        flag = "" if g["comparable"] else " — NOT the same market windows"
        table = FitTable(
            key("#", right=True),
            text("agents", min_width=10),
            text("return", min_width=8),
            text("Sharpe", min_width=6),
            text("Sortino", min_width=6),
            text("max DD", min_width=8),
            text("win rate", min_width=8),
            text("trades", min_width=6),
            text("entrant", min_width=16, detail=True),
            text("not significantly different from", min_width=16, detail=True),
            title=f"Group {i}: {windows}{flag} (by {board['by']}, "
            f"{board['confidence'] * 100:.0f}% intervals)",
        )
        label = {r["entrant"]: ", ".join(r["names"]) for r in g["rows"]}
        for r in g["rows"]:
            names = label[r["entrant"]] + (" (benchmark)" if r["role"] == "benchmark" else "")
            wr = r["win_rate"]
            table.add_row(
                str(r["rank"]),
                names,
                _cell(r["total_return"], _pct),
                _cell(r["sharpe"], number),
                _cell(r["sortino"], number),
                _cell(r["max_drawdown"], _pct),
                f"{_cell(wr, lambda v: _pct(v, 0))} ({wr['round_trips']})",
                _cell(r["trades"], lambda v: number(v, 0)),
                re.sub(r",(?=\S)", ", ", r["entrant"]) if r["names"] != [r["entrant"]] else None,
                "≈ " + "; ".join(label[e] for e in r["not_significant_vs"])
                if r["not_significant_vs"]
                else None,
            )
        tables.append(table)
    return tables


def register(app: typer.Typer, api: Callable[[], Api]) -> None:
    """Add ``session`` and ``leaderboard`` to ``app``; ``api`` gives the server's client."""
    session_app = typer.Typer(
        help="Sessions: agents compared on the same market.", no_args_is_help=True
    )
    app.add_typer(session_app, name="session")

    @session_app.command("start")
    def start(
        name: Annotated[str, typer.Argument(help="The session's name.")],
        agent: Annotated[list[str], typer.Option("--agent", "-a", help=AGENT_HELP)],
        symbols: Annotated[str, typer.Option(help="Comma-separated symbols.")] = "BTC",
        cash: Annotated[str, typer.Option(help="Each agent's starting cash (USD).")] = "10000",
        start_at: Annotated[
            str | None, typer.Option("--from", help="Replay: window start (ISO, UTC).")
        ] = None,
        end_at: Annotated[
            str | None, typer.Option("--to", help="Replay: window end, exclusive (ISO, UTC).")
        ] = None,
        dataset: Annotated[
            str | None,
            typer.Option(
                help="Replay: dataset (default: demo; with --then-live: the --exchange's name).",
                show_default=False,
            ),
        ] = None,
        speed: Annotated[
            float, typer.Option(min=0, help="Replay: market seconds per wall second (0 = max).")
        ] = 0.0,
        duration: Annotated[
            str | None,
            typer.Option(help="Live session (or the live part of --then-live): 1h, 90m, seconds."),
        ] = None,
        then_live: Annotated[
            str | None,
            typer.Option(
                "--then-live",
                help="Replay from --from until now, then carry on live on this source "
                "(coingecko or ccxt:<exchange>) for --duration.",
                show_default=False,
            ),
        ] = None,
        exchange: Annotated[
            str, typer.Option(help="--then-live: the ccxt exchange history is downloaded from.")
        ] = "binance",
        summary_every: Annotated[
            float | None, typer.Option(help="Also summarise every N hours.")
        ] = None,
        summary_endpoint: Annotated[
            str | None, typer.Option(help="LLM endpoint writing the summaries.")
        ] = None,
        summary_model: Annotated[str | None, typer.Option(help="Its model.")] = None,
        wait: Annotated[bool, typer.Option(help="Wait for the end, then show it.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Start a replay session (--from/--to), a live one (--duration), or a replay that goes
        live (--from, --then-live SOURCE, --duration)."""
        try:
            agents = [parse_agent(a) for a in agent]
            body: dict[str, Any] = {
                "name": name,
                "symbols": [s for s in symbols.split(",") if s.strip()],
                "cash": cash,
                "agents": agents,
            }
            if then_live is not None:
                if start_at is None or duration is None or end_at is not None:
                    fail("--then-live needs --from and --duration (the live part), and no --to")
                begin = parse_when(start_at, end=False)
                assert begin is not None
                body.update(
                    kind="replay",
                    replay={"dataset": dataset or exchange, "start": iso(begin), "speed": speed},
                    then_live={"source": then_live, "duration": duration, "exchange": exchange},
                )
            elif duration is not None:
                body.update(kind="live", duration=duration)
            else:
                if start_at is None or end_at is None:
                    fail("a replay session needs --from and --to (or give --duration for live)")
                begin = parse_when(start_at, end=False)
                until = parse_when(end_at, end=len(end_at.strip()) <= 10)
                assert begin is not None and until is not None
                body.update(
                    kind="replay",
                    replay={
                        "dataset": dataset or "demo",
                        "start": iso(begin),
                        "end": iso(until),
                        "speed": speed,
                    },
                )
        except ValueError as exc:
            fail(f"error: {exc}")
        if summary_every is not None:
            body["summary_every_hours"] = summary_every
        if summary_endpoint or summary_model:
            if not (summary_endpoint and summary_model):
                fail("error: give both --summary-endpoint and --summary-model")
            body["summary_llm"] = {"endpoint": summary_endpoint, "model": summary_model}
        client = api()
        created = client.post("/api/sessions", body)
        if wait:
            created = _wait(client, created["id"], quiet=as_json)
        if as_json:
            print_json(created)
            return
        say(f"session {created['id']} {created['status']}: {created['name']}", "green")
        console.print(session_agents_table(created))

    @session_app.command("stop")
    def stop(session: SessionArg, as_json: JsonOpt = False) -> None:
        """Stop a running session early; its results so far are kept."""
        client = api()
        got = client.post(f"/api/sessions/{resolve_session(client, session)}/stop")
        if as_json:
            print_json(got)
            return
        say(f"session {got['id']} {got['status']}", "yellow")
        console.print(session_agents_table(got))

    @session_app.command("list")
    def list_(as_json: JsonOpt = False) -> None:
        """Sessions, newest first."""
        got = api().get("/api/sessions")
        if as_json:
            print_json(got)
        elif not got:
            say("no sessions yet: `phantomex session start --help`")
        else:
            console.print(sessions_table(got))

    @session_app.command("show")
    def show(
        session: SessionArg,
        as_json: JsonOpt = False,
        wait: Annotated[bool, typer.Option(help="Wait for a running session to end.")] = False,
    ) -> None:
        """A session's agents, P&L and latest summary."""
        client = api()
        sid = resolve_session(client, session)
        got = _wait(client, sid, quiet=as_json) if wait else client.get(f"/api/sessions/{sid}")
        summary = client.get(f"/api/sessions/{sid}/summary")
        if as_json:
            print_json({**got, "summary": summary["latest"]})
            return
        console.print(session_agents_table(got))
        latest = summary["latest"]
        say(f"\nSummary ({latest['kind']}, by {latest['author']}):", "bold")
        say(latest["text"])
        if latest["author"] != "template":  # the exact figures, whatever the model wrote
            say("\nFigures:", "bold")
            say(latest["template"])
        if got.get("error"):
            say(f"error: {got['error']}", "red")

    @app.command("leaderboard")
    def leaderboard(
        session: Annotated[str | None, typer.Option("--session", help="Only this session.")] = None,
        by: Annotated[
            str, typer.Option(help="total_return, sharpe, sortino, max_drawdown, win_rate, trades")
        ] = "total_return",
        mix: Annotated[
            bool, typer.Option(help="Rank agents of different market windows together.")
        ] = False,
        seed: Annotated[int, typer.Option(min=0, help="Bootstrap seed.")] = 0,
        as_json: JsonOpt = False,
    ) -> None:
        """Agents and models ranked across sessions, with bootstrap confidence intervals."""
        client = api()
        sid = resolve_session(client, session) if session else None
        board = client.get("/api/leaderboard", session_id=sid, by=by, mix=mix, seed=seed)
        if as_json:
            print_json(board)
            return
        if not board["groups"]:
            say("no finished session yet")
            return
        for table in leaderboard_tables(board):
            console.print(table)
        if board["note"]:
            say(board["note"], "yellow")
        say(f"Intervals: {board['method']}.")


def _wait(client: Api, session_id: str, *, quiet: bool) -> dict[str, Any]:
    while True:
        got: dict[str, Any] = client.get(f"/api/sessions/{session_id}")
        if got["status"] != "running":
            return got
        if not quiet:
            say(f"… {got['progress'] * 100:.0f}% ({_duration(got['remaining_seconds'])} left)")
        time.sleep(1.0)
