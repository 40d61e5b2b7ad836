"""`qwen-code --acp`: the Agent Client Protocol (Zed's) over stdio, for editors.

The editor starts `qwen-code --acp` and speaks JSON-RPC with it on stdin/stdout; logs go
to stderr. `server.QwenAgent` answers the protocol's methods; `turns` runs prompt turns
and streams their events (`updates`); `permissions` asks the editor before tool calls;
`files` reads and writes files through the editor. Nothing heavy is imported here: the
command line imports this package only for `--acp`, and the rest only when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qwen_code.acp.server import QwenAgent
    from qwen_code.config import Flags
    from qwen_code.environment import Environment


def main(env: Environment, flags: Flags) -> int:
    """Serve ACP on the process's stdin/stdout until the editor closes them."""
    import asyncio

    from qwen_code.acp.server import QwenAgent
    from qwen_code.acp.transport import claim_stdio
    from qwen_code.errors import ExitCode, InputError

    try:
        in_fd, out_fd = claim_stdio(env.stdin, env.stdout, env.stderr)
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(
            f"--acp talks over stdin and stdout, which cannot be used ({exc})."
        ) from exc
    try:
        asyncio.run(serve(QwenAgent(flags, env.home), in_fd, out_fd))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return ExitCode.OK


async def serve(agent: QwenAgent, in_fd: int, out_fd: int) -> None:
    """Answer the editor on the two descriptors until its input ends (or SIGTERM), then
    close every session: background jobs, MCP servers and transcripts are closed cleanly."""
    import asyncio
    import signal

    from acp.agent.connection import AgentSideConnection

    from qwen_code.acp.transport import LineTransport, open_streams
    from qwen_code.processes import on_signal

    reader, writer = await open_streams(in_fd, out_fd)
    conn = AgentSideConnection(
        agent, LineTransport(reader, writer), listening=False, use_unstable_protocol=True
    )
    task = asyncio.current_task()
    if task is not None:
        on_signal(signal.SIGTERM, task.cancel)
    try:
        await conn.listen()
    except asyncio.CancelledError:
        pass
    finally:
        await agent.aclose()
        await conn.close()
