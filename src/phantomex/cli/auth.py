"""``phantomex auth``: the dashboard password and API tokens, kept in the server's database.

The commands open the database directly (no running server needed, and none is needed to be
trusted): a token created or revoked here takes effect on the running server's next request.
The CLI authenticates with ``PHANTOMEX_TOKEN`` or the token file ``<data_dir>/cli.token``
(mode 0600; written by ``auth token create NAME --save``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phantomex.auth.policy import exposure_problem, is_loopback
from phantomex.cli.client import fail
from phantomex.cli.fittable import FitTable, key, text
from phantomex.cli.output import console, print_json, say
from phantomex.formatting import when

if TYPE_CHECKING:
    from phantomex.auth.service import AuthService
    from phantomex.config import Settings

TOKEN_ENV = "PHANTOMEX_TOKEN"
TOKEN_FILE = "cli.token"

auth_app = typer.Typer(help="Dashboard password and API tokens.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for the CLI and scripts.", no_args_is_help=True)
auth_app.add_typer(token_app, name="token")

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Directory of the database.", show_default=False),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def token_file(settings: Settings) -> Path:
    return settings.data_dir / TOKEN_FILE


def cli_token(settings: Settings) -> str | None:
    """The token the CLI sends: ``PHANTOMEX_TOKEN``, else the data folder's token file."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    try:
        return token_file(settings).read_text().strip() or None
    except OSError:
        return None


def start_problem(settings: Settings) -> str | None:
    """Why ``phantomex start`` must refuse these settings (None if it may start)."""
    if is_loopback(settings.host) and not settings.auth:
        return None  # nothing to check: the database is not even opened
    if settings.auth is False:
        configured = False
    elif settings.auth_password_hash:
        configured = True
    else:
        with _service(settings) as service:
            configured = service.configured()
    if settings.auth and not configured:
        return (
            "auth is on (PHANTOMEX_AUTH) but no password or token exists: run "
            "`phantomex auth set-password` or `phantomex auth token create NAME` first"
        )
    return exposure_problem(settings.host, configured)


def _settings(data_dir: Path | None) -> Settings:
    from phantomex.config import load_settings

    try:
        return load_settings(data_dir=data_dir)
    except Exception as exc:  # pydantic or TOML errors: one line, exit 1
        fail(f"invalid settings: {exc}")


@contextmanager
def _service(settings: Settings) -> Iterator[AuthService]:
    """The auth service on the settings' database; an :class:`AuthError` inside the block is
    one line and exit 1."""
    from phantomex.auth.service import AuthError, AuthService
    from phantomex.store.repo import Store

    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.database_url)
    except Exception as exc:
        fail(f"cannot open the database {settings.database_url}: {exc}")
    try:
        yield AuthService(store, settings.auth_password_hash)
    except AuthError as exc:
        fail(f"error: {exc}")
    finally:
        store.close()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), replacing it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    tmp.replace(path)


def _read_password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("New dashboard password", hide_input=True, confirmation_prompt=True))


@auth_app.command("set-password")
def set_password(
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Set the dashboard password (stored as an argon2 hash); ends every dashboard session."""
    settings = _settings(data_dir)
    password = _read_password(password_stdin)
    with _service(settings) as service:
        service.set_password(password)
        service.end_all_sessions()
    say("dashboard password set; auth is now on")


@auth_app.command("clear-password")
def clear_password(data_dir: DataDirOpt = None) -> None:
    """Remove the dashboard password (API tokens keep working) and end every session."""
    with _service(_settings(data_dir)) as service:
        had = service.clear_password()
        service.end_all_sessions()
    say("dashboard password removed" if had else "no dashboard password was set")


@auth_app.command("hash-password")
def hash_password_cmd(
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Print an argon2 hash for the ``auth_password_hash`` setting (nothing is stored)."""
    from phantomex.auth.service import AuthError, hash_password

    try:
        typer.echo(hash_password(_read_password(password_stdin)))
    except AuthError as exc:
        fail(f"error: {exc}")


@auth_app.command("status")
def status(data_dir: DataDirOpt = None, as_json: JsonFlag = False) -> None:
    """Whether auth is configured: the password and the active tokens."""
    settings = _settings(data_dir)
    with _service(settings) as service:
        info = {
            "configured": service.configured(),
            "password": bool(service.password_hash()),
            "tokens": len(service.tokens()),
            "cli_token": cli_token(settings) is not None,
        }
    if as_json:
        print_json(info)
        return
    state = "configured" if info["configured"] else "not configured (loopback only)"
    say(
        f"auth {state}: password {'set' if info['password'] else 'not set'}, "
        f"{info['tokens']} active token(s); CLI token {'found' if info['cli_token'] else 'none'}"
    )


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the token by.")],
    save: Annotated[
        bool,
        typer.Option("--save", help=f"Also write it to <data_dir>/{TOKEN_FILE} for this CLI."),
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an API token and print it once (only its SHA-256 digest is stored)."""
    settings = _settings(data_dir)
    with _service(settings) as service:
        secret, info = service.create_token(name)
    if save:
        _write_private(token_file(settings), secret)
    typer.echo(secret)
    where = f"saved to {token_file(settings)}" if save else f"use it as {TOKEN_ENV}"
    print(
        f"token {info.name} ({info.prefix}…) created; it is not shown again; {where}",
        file=sys.stderr,
    )


@token_app.command("list")
def token_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """The API tokens (names and prefixes; the tokens themselves are never stored)."""
    with _service(_settings(data_dir)) as service:
        tokens = service.tokens(include_revoked)
    if as_json:
        print_json([t.public() for t in tokens])
        return
    table = FitTable(key("id"), text("name"), key("prefix"), text("created"), text("revoked"))
    for t in tokens:
        table.add_row(t.id, t.name, t.prefix, when(t.created_at), when(t.revoked_at))
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    ref: Annotated[str, typer.Argument(help="Token id, name or prefix.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a token: the server refuses it from its next request on."""
    settings = _settings(data_dir)
    with _service(settings) as service:
        info = service.revoke(ref)
    say(f"token {info.name} ({info.prefix}…) revoked")


def register(app: typer.Typer) -> None:
    """Add ``phantomex auth …`` to ``app``."""
    app.add_typer(auth_app, name="auth")
