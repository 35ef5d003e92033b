"""``phantomex server status | start | stop | restart | logs | deploy --host HOST``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from phantomex.cli.client import fail
from phantomex.cli.output import say

if TYPE_CHECKING:
    from phantomex.cli.remote.deploy import Outcome
    from phantomex.cli.remote.hosts import Host
    from phantomex.cli.remote.ssh import Remote

T = TypeVar("T")

server_app = typer.Typer(
    help="A PhantomEx service on another machine, over SSH (hosts: <cli home>/hosts.toml).",
    no_args_is_help=True,
)
HostOpt = Annotated[
    str,
    typer.Option(
        "--host",
        envvar="PHANTOMEX_REMOTE_HOST",
        help="A host of hosts.toml, or [user@]address[:port].",
        show_default=False,
    ),
]


def _echo(line: str) -> None:
    typer.echo(line)


def _on_host(ref: str, work: Callable[[Remote], Awaitable[T]]) -> T:
    """Connect to ``ref``, run ``work`` and close; a connection problem exits 1 with its reason.
    asyncssh and the host files are imported here, so other commands start without them."""
    import asyncssh

    from phantomex.cli.remote.hosts import HostError, resolve_host
    from phantomex.cli.remote.ssh import connect

    async def main(host: Host) -> T:
        async with connect(host) as remote:
            return await work(remote)

    try:
        return asyncio.run(main(resolve_host(ref)))
    except HostError as exc:
        fail(f"error: {exc}")
    except (OSError, asyncssh.Error) as exc:
        fail(f"error: the SSH connection to {ref} failed: {exc}")


def _service(ref: str, which: str) -> int:
    async def work(remote: Remote) -> int:
        ran = await remote.run(remote.host.command(which), _echo)
        return ran.status

    return _on_host(ref, work)


@server_app.command("status")
def status(host: HostOpt) -> None:
    """The service manager's status and the server's /health (exit 1 unless it is healthy)."""

    async def work(remote: Remote) -> dict[str, object] | None:
        await remote.run(remote.host.command("status"), _echo)
        return await remote.health()

    answer = _on_host(host, work)
    if answer is None:
        fail(f"PhantomEx on {host} does not answer a healthy /health")
    say(
        f"PhantomEx on {host} is healthy: market clock {answer.get('clock')}, "
        f"{answer.get('agents')} agents, kill switch {'ON' if answer.get('kill_switch') else 'off'}"
    )


def _lifecycle(host: str, which: str, done: str) -> None:
    code = _service(host, which)
    if code != 0:
        fail(f"`{which}` on {host} failed (exit status {code})")
    say(f"PhantomEx on {host}: {done}")


@server_app.command("start")
def start(host: HostOpt) -> None:
    """Start the service."""
    _lifecycle(host, "start", "started")


@server_app.command("stop")
def stop(host: HostOpt) -> None:
    """Stop the service."""
    _lifecycle(host, "stop", "stopped")


@server_app.command("restart")
def restart(host: HostOpt) -> None:
    """Restart the service."""
    _lifecycle(host, "restart", "restarted")


@server_app.command("logs")
def logs(
    host: HostOpt,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Lines to show.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """The end of the service's log (the journal by default)."""

    async def work(remote: Remote) -> int:
        command = remote.host.command("follow" if follow else "logs", lines=lines)
        return (await remote.run(command, _echo)).status

    try:
        code = _on_host(host, work)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if code != 0:
        fail(f"reading the log on {host} failed (exit status {code})")


@server_app.command("deploy")
def deploy(
    host: HostOpt,
    ref: Annotated[str, typer.Option("--ref", help="Branch, tag or commit to deploy.")] = "main",
) -> None:
    """Deploy REF: fetch, install, migrate, restart, health-check; roll back if any fails."""

    def step(line: str) -> None:
        say(f"[{host}] {line}")

    def output(line: str) -> None:
        typer.echo(f"    {line}")

    from phantomex.cli.remote.deploy import Deploy

    async def work(remote: Remote) -> Outcome:
        return await Deploy(remote, step, output).run(ref)

    out = _on_host(host, work)
    if out.ok:
        say(f"deployed {out.new} on {host}; it is healthy", "green")
        return
    if out.new is None:
        fail(f"deploy of {ref} failed at {out.failure}; nothing was changed on {host}")
    if out.rollback:
        fail(
            f"deploy of {out.new[:12]} failed at {out.failure}, and the ROLLBACK to "
            f"{out.old[:12]} FAILED at {out.rollback}: fix it on {host} by hand",
            2,
        )
    fail(f"deploy of {out.new[:12]} failed at {out.failure}; rolled back to {out.old}, healthy")


def register(app: typer.Typer) -> None:
    """Add ``phantomex server …`` to ``app``."""
    app.add_typer(server_app, name="server")
