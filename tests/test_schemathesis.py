"""The whole OpenAPI schema fuzzed by schemathesis against a real server: no 5xx, and every
status code, content type and body as documented.

By hand: ``schemathesis run http://127.0.0.1:8000/openapi.json -c CHECKS -n 8 --seed 1``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import serve

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]
EXAMPLES = 10  # per operation: bounds the run's length (the coverage phase is too long here)


def test_schemathesis_finds_no_5xx_and_no_schema_mismatch(tmp_path: Path) -> None:
    st = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    with serve(tmp_path / "data") as srv:
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
                "--seed",
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
            timeout=600,
            cwd=tmp_path,  # its cache folder (.schemathesis) stays out of the repository
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            pytest.fail(f"schemathesis failed:\n{output[-6000:]}\n{srv.server_output()[-3000:]}")
    assert "passed" in output
    assert "Traceback" not in srv.server_output()
