"""Real MCP servers for the test suite; each module is a script run as a subprocess.

    tools_server.py            stdio
    tools_server.py --http 0   streamable HTTP at /mcp; "READY <port>" on stderr
    tools_server.py --sse 0    legacy SSE at /sse; "READY <port>" on stderr
    crash_server.py            exits 3 at once, "boom" on stderr
    hang_server.py             never answers
    dying_server.py            tool die() kills the process mid-call
    changing_server.py         tool unlock() adds a tool and sends tools/list_changed
    oauth_server.py 0          OAuth-protected /mcp with its own authorization server

The scripts use only the standard library and the `mcp` SDK; see tests/mcp_helpers.py.
"""
