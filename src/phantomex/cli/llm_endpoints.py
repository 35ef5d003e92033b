"""``phantomex llm add | remove | list``: the running server's LLM endpoints, over the API."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import typer

from phantomex.cli.client import Api, fail
from phantomex.cli.fittable import FitTable, key, text
from phantomex.cli.output import console, print_json, say

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of text.")]


class Kind(enum.StrEnum):
    ollama = "ollama"
    openai = "openai"


class KeepAlive(enum.StrEnum):
    unload = "unload"
    keep = "keep"
    group = "group"


def endpoint_body(
    name: str,
    kind: Kind,
    base_url: str,
    *,
    keep_alive: KeepAlive | None,
    timeout: float | None,
    max_concurrency: int | None,
    api_key_env: str | None,
) -> dict[str, Any]:
    """The API's endpoint body; the API key is read from the environment variable
    ``api_key_env`` (never from the command line, where it would land in the shell history)."""
    body: dict[str, Any] = {"name": name, "kind": kind.value, "base_url": base_url}
    if keep_alive is not None:
        body["keep_alive"] = keep_alive.value
    if timeout is not None:
        body["timeout_seconds"] = timeout
    if max_concurrency is not None:
        body["max_concurrency"] = max_concurrency
    if api_key_env is not None:
        secret = os.environ.get(api_key_env, "").strip()
        if not secret:
            fail(f"error: --api-key-env: the environment variable {api_key_env} is not set")
        body["api_key"] = secret
    return body


def describe(e: dict[str, Any]) -> str:
    key_state = "an API key" if e.get("has_api_key") else "no API key"
    return (
        f"{e['name']}: {e['kind']} at {e['base_url']}, keep-alive {e['keep_alive']}, timeout "
        f"{e['timeout_seconds']:g} s, {e['max_concurrency']} call(s) at once, {key_state}"
    )


def register(app: typer.Typer, api: Callable[[], Api]) -> None:
    """Add ``llm add | remove | list`` to ``app``; ``api`` gives the server's client."""
    llm_app = typer.Typer(help="The server's LLM endpoints.", no_args_is_help=True)
    app.add_typer(llm_app, name="llm")

    @llm_app.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="A unique name (letters, digits, . _ -).")],
        kind: Annotated[Kind, typer.Option(case_sensitive=False, help="The API it speaks.")],
        base_url: Annotated[
            str, typer.Option(help="e.g. http://localhost:11434 (Ollama), …/v1 (OpenAI).")
        ],
        keep_alive: Annotated[
            KeepAlive | None,
            typer.Option(
                case_sensitive=False,
                help="Ollama: unload after each call, keep loaded, or keep for a round of "
                "agents sharing the model (server default: group).",
                show_default=False,
            ),
        ] = None,
        timeout: Annotated[
            float | None,
            typer.Option(help="Seconds a call may take (server default: 60).", show_default=False),
        ] = None,
        max_concurrency: Annotated[
            int | None,
            typer.Option(help="Calls at once (server default: 1).", show_default=False),
        ] = None,
        api_key_env: Annotated[
            str | None,
            typer.Option(
                help="Environment variable holding the API key (stored encrypted).",
                show_default=False,
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Add an LLM endpoint to the running server (kept across restarts)."""
        body = endpoint_body(
            name,
            kind,
            base_url,
            keep_alive=keep_alive,
            timeout=timeout,
            max_concurrency=max_concurrency,
            api_key_env=api_key_env,
        )
        added = api().post("/api/llm/endpoints", body)
        if as_json:
            print_json(added)
            return
        say(f"added LLM endpoint {describe(added)}", "green")

    @llm_app.command("remove")
    def remove(
        name: Annotated[str, typer.Argument(help="The endpoint's name.")],
        as_json: JsonOpt = False,
    ) -> None:
        """Remove an LLM endpoint added through the API (refused while agents use it)."""
        out = api().call("DELETE", f"/api/llm/endpoints/{quote(name, safe='')}")
        if as_json:
            print_json(out)
            return
        say(f"removed LLM endpoint {name}")

    @llm_app.command("list")
    def list_(as_json: JsonOpt = False) -> None:
        """The configured LLM endpoints (API keys are never shown)."""
        rows: list[dict[str, Any]] = api().get("/api/llm/endpoints")
        if as_json:
            print_json(rows)
            return
        if not rows:
            say("no LLM endpoints: add one with `phantomex llm add`")
            return
        table = FitTable(
            key("name"),
            key("kind"),
            text("base URL", min_width=16),
            key("keep-alive"),
            key("timeout", right=True),
            key("at once", right=True),
            key("API key"),
            title="LLM endpoints",
        )
        for e in rows:
            table.add_row(
                e["name"],
                e["kind"],
                e["base_url"],
                e["keep_alive"],
                f"{e['timeout_seconds']:g} s",
                str(e["max_concurrency"]),
                "set" if e.get("has_api_key") else "none",
            )
        console.print(table)
