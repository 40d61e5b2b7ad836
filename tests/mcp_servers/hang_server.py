"""An MCP "server" that starts and never answers: it reads stdin and replies nothing.

It exits when stdin closes (the polite shutdown a stdio client starts with), unless run
with --linger, in which case it keeps sleeping until it is terminated or killed.
MCP_TEST_MARKER, when set, names a file that gets this process's pid at start-up.
"""

import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    if marker := os.environ.get("MCP_TEST_MARKER"):
        Path(marker).write_text(f"{os.getpid()}\n")
    for _line in sys.stdin:
        pass
    if "--linger" in sys.argv[1:]:
        while True:
            time.sleep(3600)
