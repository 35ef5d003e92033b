"""One SSH connection to a host (asyncssh): run a command with its output streamed, and ask the
server's ``/health`` through a forwarded port (nothing but sshd needed on the host)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncssh
import httpx

from phantomex.cli.remote.hosts import Host, HostError

Emit = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Ran:
    """A finished remote command: its exit status and its output (stdout and stderr merged)."""

    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0


class Remote:
    """An open connection to ``host``."""

    def __init__(self, host: Host, conn: asyncssh.SSHClientConnection) -> None:
        self.host, self.conn = host, conn

    async def run(self, command: str, emit: Emit | None = None) -> Ran:
        """Run ``command`` through the user's shell; each output line goes to ``emit``."""
        lines: list[str] = []
        async with self.conn.create_process(command, stderr=asyncssh.STDOUT) as proc:
            async for line in proc.stdout:
                lines.append(line)
                if emit is not None:
                    emit(line.rstrip("\n"))
            completed = await proc.wait()
        status = completed.exit_status
        return Ran(-1 if status is None else status, "".join(lines))

    async def health(self, timeout: float = 5.0) -> dict[str, object] | None:
        """The server's ``/health`` answer (a JSON object with status ok), None otherwise."""
        url = urlsplit(self.host.health_url)
        if not url.hostname:
            raise HostError(f"health_url {self.host.health_url!r} names no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        listener = await self.conn.forward_local_port("127.0.0.1", 0, url.hostname, port)
        try:
            local = f"{url.scheme}://127.0.0.1:{listener.get_port()}{url.path or '/health'}"
            # the tunnel is authenticated by SSH; a certificate names the host, not 127.0.0.1
            async with httpx.AsyncClient(timeout=timeout, verify=False) as client:
                resp = await client.get(local, headers={"Host": url.netloc})
            body = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        finally:
            listener.close()
        if isinstance(body, dict) and body.get("status") == "ok":
            return body
        return None


@asynccontextmanager
async def connect(host: Host) -> AsyncIterator[Remote]:
    """An SSH connection to ``host``; its host key must be known (never accepted blindly)."""
    options: dict[str, object] = {"connect_timeout": host.connect_timeout}
    if host.user:
        options["username"] = host.user
    if host.key is not None:
        options["client_keys"] = [str(host.key.expanduser())]
    if host.known_hosts is not None:
        options["known_hosts"] = str(host.known_hosts.expanduser())
    try:
        conn = await asyncssh.connect(host.address, host.port, **options)
    except (OSError, asyncssh.Error) as exc:
        where = f"{host.user + '@' if host.user else ''}{host.address}:{host.port}"
        raise HostError(f"cannot connect to {where} over SSH: {exc}") from None
    try:
        yield Remote(host, conn)
    finally:
        conn.close()
        await conn.wait_closed()
