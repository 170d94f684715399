"""``tandem serve`` as a subprocess for end-to-end tests: started on 127.0.0.1, waited for until
ready, stopped with SIGTERM (killed if it does not stop)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def tandem(*args: str) -> list[str]:
    """The ``tandem`` CLI of this checkout, run by this interpreter."""
    return [sys.executable, "-m", "app.cli", *args]


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``TANDEM_*`` setting, offline, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    """Until ``/health/ready`` answers 200; fails with the server's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


@contextmanager
def tandem_serve(data_dir: Path, port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """``tandem --data-dir DATA_DIR serve`` on ``127.0.0.1:PORT``: its base URL once ready."""
    command = tandem("--data-dir", str(data_dir), "serve", "--host", "127.0.0.1")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
