"""The command sandbox: every command the agent runs, inside bubblewrap (Linux).

`policy` says what a sandboxed command may touch, `bwrap` turns that into a bubblewrap
command line, `proxy` and `bridge` carry an allow-listed network, `blocked` explains a
failure the sandbox caused, and `manager.Sandbox` is what a session holds: the setting,
when `auto` turns it on, availability, the proxy's lifetime.
"""
