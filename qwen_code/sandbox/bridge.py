"""Inside the sandbox: carry 127.0.0.1:PORT to qwen-code's network proxy, then run a command.

    python3 -I -S bridge.py --socket SOCKET_PATH --port PORT -- ARGV...

A sandboxed command's network namespace has nothing but its own loopback. This script
listens on 127.0.0.1:PORT there (before the command starts, so the command never finds
the port closed), forwards every connection to the proxy's Unix socket (bind-mounted into
the sandbox), runs ARGV as its child and exits with the child's status: the exit code, or
128 + the signal that killed it. SIGTERM, SIGINT and SIGHUP are passed on to the child.

It runs before every network-allowed command under `python3 -I -S`, so it imports nothing
but a few stdlib modules and never qwen_code. The child stays in the caller's process
group (no new session), where a kill of the group from outside reaches it.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time

USAGE = "usage: bridge.py --socket SOCKET_PATH --port PORT -- ARGV..."
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
BRIDGE_FAILED = 125
"""Exit status when the bridge itself cannot start (the command was not run)."""
CHUNK = 65536


def parse_args(args: list[str]) -> tuple[str, int, list[str]]:
    """(socket_path, port, argv) from the command line; ValueError with a reason."""
    if "--" not in args:
        raise ValueError("missing -- before the command")
    split = args.index("--")
    options, argv = args[:split], args[split + 1 :]
    if len(options) % 2 or not argv:
        raise ValueError("options come in pairs and a command must follow --")
    values = {options[i]: options[i + 1] for i in range(0, len(options), 2)}
    if set(values) != {"--socket", "--port"}:
        raise ValueError("expected exactly --socket and --port")
    port = int(values["--port"])
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return values["--socket"], port, argv


def listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    return listener


def pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy src to dst until EOF, then half-close dst so the other direction (the
    response) still flows. On an error, shut both down to end the other direction too."""
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def forward(conn: socket.socket, socket_path: str) -> None:
    """One client connection, carried to the proxy's Unix socket and back."""
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(socket_path)
    except OSError:
        upstream.close()
        conn.close()
        return
    back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
    back.start()
    pump(conn, upstream)
    back.join()
    upstream.close()
    conn.close()


def serve(listener: socket.socket, socket_path: str) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:  # out of file descriptors, say: try again shortly
            time.sleep(0.1)
            continue
        threading.Thread(target=forward, args=(conn, socket_path), daemon=True).start()


def exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run(socket_path: str, port: int, argv: list[str]) -> int:
    try:
        listener = listen(port)
    except OSError as exc:
        print(
            f"qwen-code sandbox: network bridge cannot listen on port {port}: {exc}",
            file=sys.stderr,
        )
        return BRIDGE_FAILED
    # Handlers go in before the child exists; a signal that comes first is delivered
    # once it does.
    pending: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def pass_on(signum: int, _frame: object) -> None:
        if child is None:
            pending.append(signum)
        else:
            with contextlib.suppress(OSError):
                child.send_signal(signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, pass_on)
    try:
        child = subprocess.Popen(argv, close_fds=False)  # keep the status pipe (launch.py)
    except OSError as exc:
        print(f"qwen-code sandbox: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    for signum in pending:
        child.send_signal(signum)
    threading.Thread(target=serve, args=(listener, socket_path), daemon=True).start()
    return exit_status(child.wait())


def main() -> int:
    try:
        socket_path, port, argv = parse_args(sys.argv[1:])
    except ValueError as exc:
        print(f"qwen-code sandbox: network bridge: {exc}\n{USAGE}", file=sys.stderr)
        return BRIDGE_FAILED
    return run(socket_path, port, argv)


if __name__ == "__main__":
    sys.exit(main())
