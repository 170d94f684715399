"""The llama.cpp child's supervisor without llama.cpp: exits, config, the portable build
options, and the circuit breaker's trip/probe (issue 19)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import signal
import socket
import subprocess
from pathlib import Path

from app.generators.breaker import CircuitBreaker
from app.generators.llama_supervisor import ChildOptions, describe_exit, free_port
from app.generators.prompt_lookup import LookupConfig

ROOT = Path(__file__).resolve().parents[3]


def test_exits_are_described_with_the_likely_cause():
    assert describe_exit(1) == "exit code 1"
    ill = describe_exit(-signal.SIGILL)
    assert ill.startswith("killed by SIGILL") and "make install-llama" in ill
    assert "out of memory" in describe_exit(-signal.SIGKILL)


def test_server_config_queues_requests_and_passes_model_options():
    opts = ChildOptions(
        Path("/m/model.gguf"),
        context_tokens=512,
        threads=2,
        alias="m",
        model_options={"draft_model": "prompt-lookup-decoding"},  # the hook of issue 16
    )
    cfg = opts.server_config(4321)
    assert cfg["host"] == "127.0.0.1" and cfg["port"] == 4321
    assert cfg["interrupt_requests"] is False  # the default aborts the running generation
    (model,) = cfg["models"]
    assert model["n_ctx"] == 512 and model["n_threads"] == 2 and model["verbose"] is True
    assert model["draft_model"] == "prompt-lookup-decoding" and "chat_format" not in model
    assert opts.boot_args() == []  # plain decoding


def test_prompt_lookup_reaches_the_child_as_boot_arguments():
    opts = ChildOptions(Path("/m/model.gguf"), prompt_lookup=LookupConfig(draft_tokens=5))
    flag, config = opts.boot_args()
    assert flag == "--tandem-prompt-lookup"
    assert json.loads(config) == {"draft_tokens": 5, "max_ngram": 4, "min_ngram": 3}
    assert "draft_model" not in opts.server_config(1)["models"][0]  # no logits_all


def test_free_port_keeps_a_free_preferred_port_and_moves_off_a_taken_one():
    port = free_port()
    assert free_port(port) == port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert free_port(busy) != busy


def _make_var(name: str) -> str:
    out = subprocess.run(
        ["make", "-s", "-n", "-p", "-f", "Makefile", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    match = re.search(rf"^{name} :?= (.*)$", out, re.M)
    assert match, name
    return match.group(1).strip()


def test_llama_build_is_portable_keyed_and_the_same_in_docker():
    args = _make_var("LLAMA_CMAKE_ARGS")
    flags = dict(a.removeprefix("-D").split("=", 1) for a in shlex.split(args))
    assert flags["GGML_NATIVE"] == "OFF"
    assert flags["GGML_AVX2"] == "ON" and flags["GGML_FMA"] == "ON"
    for risky in ("GGML_AVX512", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert flags[risky] == "OFF", risky
    # The wheel cache folder is keyed by a hash of the version and the options.
    version = _make_var("LLAMA_VERSION")
    key = hashlib.sha256(f"{version} {args}".encode()).hexdigest()[:16]
    assert _make_var("LLAMA_WHEELS").endswith(f"/llama-cpp-python-{version}-{key}")
    docker = (ROOT / "Dockerfile").read_text()
    match = re.search(r'^ARG LLAMA_CMAKE_ARGS="(.*)"$', docker, re.M)
    assert match and match.group(1) == args, "Dockerfile and Makefile build options differ"


def test_breaker_trips_open_at_once_and_probes_when_told():
    now = [0.0]
    breaker = CircuitBreaker(failures=3, reset_after_s=30, clock=lambda: now[0])
    breaker.trip("child died")
    assert breaker.state == "open" and not breaker.allow()
    breaker.probe_now()
    assert breaker.allow()  # one probe
    assert not breaker.allow()
    breaker.success()
    assert breaker.state == "closed"
