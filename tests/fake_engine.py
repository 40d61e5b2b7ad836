"""A stand-in inference engine for the `qwen-code serve` tests. Stdlib only.

Run it under the name of a real engine (a `vllm`, `llama-server` or `nvidia-smi` shim on
PATH, or `python -m sglang.launch_server` through a fake package): it reads the port, host
and served model name from the engine's own flags, logs like an engine, answers 503 on
`/health` and `/v1/models` while "loading", then 200. Behaviour, from the environment:

    FAKE_ENGINE_LOAD_S     seconds to "load" (default 0.3)
    FAKE_ENGINE_CRASH      exit with this code during loading, after logging an error
    FAKE_ENGINE_CHILD      1: start a child process (same group) that must die with us
    FAKE_ENGINE_IGNORE_TERM 1: ignore SIGTERM (the launcher must SIGKILL)
    FAKE_ENGINE_PIDS       file to write "engine_pid child_pid" to
    FAKE_ENGINE_ARGV       file to write the argv (JSON) to
    FAKE_ENGINE_TEMPLATE   chat template /props reports (llama.cpp)
    FAKE_ENGINE_NO_HEALTH  1: no /health and no /props (404), as llama-cpp-python's server;
                           it starts listening only once loaded, as that server does
    FAKE_ENGINE_TENSORS    log this many llama.cpp `create_tensor: loading tensor` lines
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OFFICIAL_TEMPLATE = "{% macro render_extra_keys(json_dict, handled_keys) %} ... <tool_call> ..."


def flag(argv: list[str], *names: str, default: str = "") -> str:
    for name in names:
        if name in argv and argv.index(name) + 1 < len(argv):
            return argv[argv.index(name) + 1]
    return default


class State:
    ready = False
    name = "fake"
    max_len = 0


def make_handler(state: type[State]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            print(f"INFO:     {self.address_string()} {format % args}", flush=True)

        def _send(self, code: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            bare = os.environ.get("FAKE_ENGINE_NO_HEALTH") == "1"
            if bare and self.path in ("/health", "/props"):
                self._send(404, {"detail": "Not Found"})
            elif not state.ready:
                self._send(503, {"error": {"code": 503, "message": "Loading model"}})
            elif self.path in ("/health", "/v1/health"):
                self._send(200, {"status": "ok"})
            elif self.path == "/v1/models":
                model = {"id": state.name, "object": "model", "max_model_len": state.max_len}
                self._send(200, {"object": "list", "data": [model]})
            elif self.path == "/props":
                template = os.environ.get("FAKE_ENGINE_TEMPLATE", OFFICIAL_TEMPLATE)
                self._send(200, {"chat_template": template})
            else:
                self._send(404, {"error": "not found"})

    return Handler


def start_child() -> int:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    return child.pid


def log_tensors(count: int) -> None:
    """llama.cpp's verbose load: a line per tensor."""
    if not count:
        return
    print(
        f"llama_model_loader: loaded meta data with 33 key-value pairs and {count} tensors "
        "from model.gguf (version GGUF V3 (latest))",
        flush=True,
    )
    for i in range(count):
        print(f"create_tensor: loading tensor blk.{i}.attn_q.weight", flush=True)
    print("load_tensors:   CPU_Mapped model buffer size =    93.12 MiB", flush=True)


def main(argv: list[str]) -> int:
    if os.environ.get("FAKE_ENGINE_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("FAKE_ENGINE_ARGV"):
        Path(os.environ["FAKE_ENGINE_ARGV"]).write_text(json.dumps(argv))
    child = start_child() if os.environ.get("FAKE_ENGINE_CHILD") == "1" else 0
    if os.environ.get("FAKE_ENGINE_PIDS"):
        Path(os.environ["FAKE_ENGINE_PIDS"]).write_text(f"{os.getpid()} {child}")
    State.name = flag(argv, "--served-model-name", "--alias", "--model_alias", default="fake")
    State.max_len = int(
        flag(argv, "--max-model-len", "--context-length", "--ctx-size", "--n_ctx", default="0")
    )
    address = (flag(argv, "--host", default="127.0.0.1"), int(flag(argv, "--port", default="8000")))
    port = address[1]

    def listen() -> None:
        server = ThreadingHTTPServer(address, make_handler(State))
        threading.Thread(target=server.serve_forever, daemon=True).start()

    bare = os.environ.get("FAKE_ENGINE_NO_HEALTH") == "1"
    if not bare:
        listen()
    print(f"INFO fake engine {os.getpid()} starting: {' '.join(argv)}", flush=True)
    log_tensors(int(os.environ.get("FAKE_ENGINE_TENSORS", "0")))
    load_s = float(os.environ.get("FAKE_ENGINE_LOAD_S", "0.3"))
    for step in range(1, 5):
        time.sleep(load_s / 4)
        print(f"Loading safetensors checkpoint shards: {step * 25}% | {step}/4", flush=True)
        if step == 2 and os.environ.get("FAKE_ENGINE_CRASH"):
            print("ERROR torch.OutOfMemoryError: CUDA out of memory (fake)", flush=True)
            return int(os.environ["FAKE_ENGINE_CRASH"])
    print("INFO GPU KV cache size: 275,823 tokens", flush=True)
    State.ready = True
    if bare:
        listen()
    print(
        f"INFO:     Uvicorn running on http://127.0.0.1:{port} (Press CTRL+C to quit)", flush=True
    )
    try:
        while True:
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
