"""The whole OpenAPI schema fuzzed by schemathesis against a real server: no 5xx, and every
status code, content type, header and body as documented (the response models of every
route are checked against what the server really sends).

The server has an agent with decisions, a finished session and an LLM endpoint (a local
simulator), and schemathesis is given their identifiers, so the operations on one resource
answer 2xx too, not only 404. Deterministic: the same cases on every run, one worker.

By hand: ``schemathesis run http://127.0.0.1:8000/openapi.json -c CHECKS -n 10
--generation-deterministic`` (with a ``schemathesis.toml`` like :func:`config`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerHandle, serve

from phantomex.devtools.llm_sim.server import SimServer

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]
EXAMPLES = 10  # per operation: bounds the run's length (the coverage phase is too long here)
#: Operations that would remove the resource the others use: they get an unknown name.
DESTRUCTIVE = ("DELETE /api/agents/{agent_id}", "DELETE /api/llm/endpoints/{name}")
WINDOW = {"start": "2023-04-10T00:00:00Z", "end": "2023-04-10T00:20:00Z"}


def known_resources(srv: ServerHandle, sim: SimServer) -> dict[str, str]:
    """Identifiers of an agent with a decision, a finished session, an LLM endpoint and a
    symbol."""
    srv.post("/api/llm/endpoints", {"name": "sim", "kind": "openai", "base_url": sim.openai_url})
    session = srv.post(
        "/api/sessions",
        {"name": "fuzz", "symbols": ["BTC"], "agents": [{"name": "a", "brain": "rsi"}],
         "replay": WINDOW},
    )  # fmt: skip
    deadline = time.monotonic() + 300
    decisions: list[Any] = []
    while time.monotonic() < deadline:
        decisions = srv.get("/api/decisions")
        finished = srv.get(f"/api/sessions/{session['id']}", curves="false")["status"]
        if decisions and finished != "running":
            break
        time.sleep(0.5)
    assert decisions and finished == "finished", (decisions, finished)
    return {
        "agent_id": decisions[0]["agent_id"],
        "decision_id": decisions[0]["id"],
        "session_id": session["id"],
        "name": "sim",
        "symbol": "BTC",
    }


def config(parameters: dict[str, str]) -> str:
    """A schemathesis.toml giving every operation these parameter values."""
    lines = ["[parameters]", *(f"{k} = {json.dumps(v)}" for k, v in parameters.items())]
    for operation in DESTRUCTIVE:
        field = operation.rsplit("{", 1)[1].rstrip("}")
        lines += [
            "",
            "[[operations]]",
            f"include-name = {json.dumps(operation)}",
            f"parameters = {{ {field} = {json.dumps('no-such-' + field)} }}",
        ]
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_no_5xx_and_no_schema_mismatch(tmp_path: Path) -> None:
    st = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    with SimServer(models=["alpha:7b"]) as sim, serve(tmp_path / "data") as srv:
        (tmp_path / "schemathesis.toml").write_text(config(known_resources(srv, sim)))
        proc = subprocess.run(
            [
                st,
                "run",
                f"{srv.url}/openapi.json",
                "--checks",
                ",".join(CHECKS),
                "--max-examples",
                str(EXAMPLES),
                "--phases",
                "examples,fuzzing",
                "--generation-deterministic",  # the same cases on every run
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--report-dir",
                str(tmp_path / "report"),
                "--suppress-health-check",
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,  # its config; its cache folder (.schemathesis) stays out of the repo
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            pytest.fail(f"schemathesis failed:\n{output[-8000:]}\n{srv.server_output()[-3000:]}")
    assert "passed" in output
    assert "Traceback" not in srv.server_output()
