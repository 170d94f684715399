"""A small OpenAI-compatible chat server for fault tests (real HTTP on 127.0.0.1).

``FakeLLM`` serves ``POST /v1/chat/completions`` (streaming and not) and ``GET /v1/models``
from a thread. What it does is set per test through attributes:

* ``mode``: ``ok`` (answers ``answer``), ``slow`` (waits ``delay_s`` before the first byte),
  ``stall`` (sends the first token, then waits ``delay_s``), ``error`` (HTTP 500 with an
  OpenAI-style error body), ``garbage`` (200 with a body that is not a completion), ``hang``
  (accepts the request and never answers: the connection is closed, unanswered, only when the
  server stops or after ``hang_s``);
* ``answer``: the text answered, in ``chunk_chars`` pieces when streaming; it may cite passages
  that were not given (``[7]``) to test citation validation;
* ``requests``: the JSON bodies received (to check prompts and that a breaker stopped calls).

Run it by hand: ``python tests/integration/fake_llm.py --port 8081 --answer "... [1]"``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLLM:
    def __init__(self, port: int = 0, answer: str = "The answer is in the passages [1].") -> None:
        self.mode = "ok"
        self.answer = answer
        self.delay_s = 2.0
        self.hang_s = 3600.0
        self.chunk_chars = 6
        self.model = "fake-llm"
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def wait(self, seconds: float) -> None:
        """Sleep, but wake up when the server stops."""
        self._stop.wait(seconds)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": fake.model}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            fake.requests.append(body)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._json(404, {"error": {"message": "not found"}})
                return
            mode = fake.mode
            if mode == "error":
                self._json(500, {"error": {"message": "model crashed", "type": "server_error"}})
                return
            if mode == "garbage":
                self._json(200, {"unexpected": True})
                return
            if mode == "hang":
                fake.wait(fake.hang_s)
                self.close_connection = True
                return
            if mode == "slow":
                fake.wait(fake.delay_s)
            try:
                if body.get("stream"):
                    self._stream(mode)
                else:
                    self._json(200, _completion(fake))
            except (BrokenPipeError, ConnectionResetError):
                return

        def _stream(self, mode: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            text = fake.answer
            pieces = [text[i : i + fake.chunk_chars] for i in range(0, len(text), fake.chunk_chars)]
            self._event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
            for i, piece in enumerate(pieces):
                self._event({"choices": [{"index": 0, "delta": {"content": piece}}]})
                if mode == "stall" and i == 0:
                    fake.wait(fake.delay_s)
            self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _event(self, chunk: dict[str, Any]) -> None:
            chunk = {"id": "fake", "object": "chat.completion.chunk", "model": fake.model, **chunk}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

    return Handler


def _completion(fake: FakeLLM) -> dict[str, Any]:
    return {
        "id": "fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": fake.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": fake.answer},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": len(fake.answer.split())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--answer", default="The answer is in the passages [1].")
    parser.add_argument("--delay", type=float, default=2.0)
    args = parser.parse_args()
    fake = FakeLLM(args.port, args.answer)
    fake.mode, fake.delay_s = args.mode, args.delay
    print(f"fake LLM at {fake.url} (mode {fake.mode})", flush=True)
    fake._server.serve_forever()


if __name__ == "__main__":
    main()
