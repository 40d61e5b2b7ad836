"""What an MCP server adds to start-up: headless start to the first request at the scripted
model, with no MCP server and with one stdio server (tests/mcp_servers/tools_server.py, 8
tools, written with the official SDK).

python benchmarks/mcp_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import ROOT, FakeLLM, describe, first_requests

SERVER = ROOT / "tests" / "mcp_servers" / "tools_server.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as server:
        workdir = Path(tmp)
        bare, with_mcp = workdir / "bare", workdir / "mcp"
        bare.mkdir()
        with_mcp.mkdir()
        config = {"mcpServers": {"tools": {"command": sys.executable, "args": [str(SERVER)]}}}
        (with_mcp / "settings.json").write_text(json.dumps(config))
        none = first_requests(server, bare, workdir, runs)
        one = first_requests(server, with_mcp, workdir, runs)
    print(f"no MCP server:     {describe(none)}")
    print(f"one stdio server:  {describe(one)}")
    added = (statistics.median(one) - statistics.median(none)) * 1000
    print(f"added by the server (median): {added:.0f} ms")


if __name__ == "__main__":
    main()
