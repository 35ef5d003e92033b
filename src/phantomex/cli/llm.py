"""``phantomex llm-sim``: the local Ollama/OpenAI simulator (``phantomex.devtools.llm_sim``)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``llm-sim`` command to ``app``."""

    @app.command("llm-sim")
    def llm_sim(
        host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="Port (Ollama's is 11434).")] = (
            11434
        ),
        latency: Annotated[
            float, typer.Option(min=0, help="Seconds each reply takes (after loading).")
        ] = 0.0,
        load_seconds: Annotated[
            float, typer.Option(min=0, help="Seconds to load a model that is not loaded.")
        ] = 0.0,
        models: Annotated[
            str | None,
            typer.Option(
                help="Comma-separated model names (default llama3.2, qwen2.5:7b, deepseek-r1).",
                show_default=False,
            ),
        ] = None,
        max_parallel: Annotated[
            int, typer.Option(min=0, help="Requests served at once, others queue (0: no limit).")
        ] = 1,
        max_loaded: Annotated[
            int | None,
            typer.Option(
                min=1, help="Models kept loaded at once (LRU eviction).", show_default=False
            ),
        ] = None,
        tools: Annotated[
            bool, typer.Option(help="Call get_portfolio first when that tool is offered.")
        ] = True,
    ) -> None:
        """Run a local LLM server simulator speaking the Ollama (/api) and OpenAI (/v1) APIs."""
        from phantomex.devtools.llm_sim import server

        try:
            server.run(
                host,
                port,
                models=server.parse_models(models),
                latency_seconds=latency,
                load_seconds=load_seconds,
                max_parallel=max_parallel,
                max_loaded=max_loaded,
                use_tools=tools,
            )
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
