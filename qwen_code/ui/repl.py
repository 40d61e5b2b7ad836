"""The interactive session: a prompt-toolkit input loop over the same agent events.

The REPL is one more consumer of `Agent.run()`: it renders events with rich, asks for
approvals, and lets Ctrl+C cancel a turn (the conversation stays valid, the prompt
comes back). Input: slash commands, `@path` attachments, `!command` shell escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import ThreadedCompleter
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from rich.text import Text

from qwen_code import __version__
from qwen_code.agent.events import AssistantMessage, SubagentEvent, TurnEnd
from qwen_code.agent.stats import SessionStats
from qwen_code.config import ApprovalMode, Provider, Settings, project_id
from qwen_code.environment import Environment
from qwen_code.errors import ModelError
from qwen_code.session.live import Session
from qwen_code.session.persistence import Persistence
from qwen_code.ui import commands
from qwen_code.ui.attachments import Attachment, expand_at_references, images_for_model
from qwen_code.ui.clipboard import PastedImages, bind_paste, pasted_for
from qwen_code.ui.completion import ReplCompleter
from qwen_code.ui.mcp_resources import expand_mcp_resources, find_mcp_references
from qwen_code.ui.notify import Alerts, Notifier
from qwen_code.ui.repl_io import ReplIO
from qwen_code.ui.shell_mode import run_user_shell
from qwen_code.ui.user_channel import ReplUserChannel

MODES: tuple[ApprovalMode, ...] = ("default", "auto-edit", "yolo", "plan")


class Repl:
    """The interactive session on one `Session`. Its terminal pieces (`io`: console,
    renderer, prompt input/output, the running turn) were made before the session, so the
    session's approver could be built on them (`ReplIO.approver`)."""

    def __init__(
        self,
        session: Session,
        *,
        io: ReplIO,
        home: Path,
        prompt_session: PromptSession[str] | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.session = session
        self.io = io
        session.tool_ctx.user = ReplUserChannel.on(io, approver=session.runner.approver)
        if io.alerts is None:
            io.alerts = alerts_for(io, session.settings)
        io.alerts.hooks = lambda: getattr(session, "hooks", None)
        self.notes = list(notes or ())
        """What start-up left out or could not do (untrusted settings, damaged session
        lines, context files), shown under the banner."""
        self.console = io.console
        self.home = home
        self.stats = SessionStats()
        self.renderer = io.renderer
        session.client.on_prompt_wait = self.renderer.prompt_wait
        self.pending_context: list[str] = []
        self.served_models: list[dict[str, Any]] = []
        self.shell_mode = False
        self.pasted = PastedImages()
        self.exit_requested = False
        self.started = time.monotonic()
        commands.load_command_modules(self)
        if session.subagents is not None:
            session.subagents.watchers.append(self._background_step)
        self.prompt = prompt_session or self._prompt_session()

    # --- input -------------------------------------------------------------------------

    def _prompt_session(self) -> PromptSession[str]:
        history = self.home / "projects" / project_id(self.session.cwd) / "history"
        history.parent.mkdir(parents=True, exist_ok=True)
        completer = ReplCompleter(self._command_entries, self.session.cwd)
        completer.prefetch()
        return PromptSession(
            input=self.io.input,
            output=self.io.output,
            history=FileHistory(str(history)),
            completer=ThreadedCompleter(completer),
            complete_while_typing=True,
            key_bindings=self._key_bindings(),
            bottom_toolbar=self.toolbar,
            vi_mode=self.session.settings.general.vim_mode,
        )

    def _command_entries(self) -> list[tuple[str, str, Any]]:
        entries = []
        for entry in commands.unique_commands():
            args = entry.args
            completer = (lambda _text, a=args: a(self)) if args else None
            entries.append((entry.name, entry.description, completer))
        return entries

    def _key_bindings(self) -> KeyBindings:
        bindings = KeyBindings()

        @bindings.add("enter")
        def _submit(event: KeyPressEvent) -> None:
            buffer = event.current_buffer
            if buffer.text.endswith("\\") and buffer.cursor_position == len(buffer.text):
                buffer.delete_before_cursor(1)
                buffer.insert_text("\n")
            elif buffer.complete_state and buffer.complete_state.current_completion:
                completion = buffer.complete_state.current_completion
                buffer.apply_completion(completion)
                if not completion.text.endswith("/"):  # a folder: go on typing inside it
                    buffer.validate_and_handle()  # as in the peers: one Enter accepts and sends
            else:
                buffer.validate_and_handle()

        @bindings.add("escape", "enter")
        @bindings.add("c-j")
        def _newline(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")

        @bindings.add("s-tab")
        def _cycle_mode(event: KeyPressEvent) -> None:
            current = self.session.runner.mode
            self.set_mode(MODES[(MODES.index(current) + 1) % len(MODES)], quiet=True)
            event.app.invalidate()

        bind_paste(bindings, self)

        @bindings.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            buffer = event.current_buffer
            if buffer.text:
                buffer.append_to_history()
                buffer.reset()
            else:
                event.app.exit(exception=KeyboardInterrupt())

        return bindings

    def toolbar(self) -> str:
        from qwen_code.llm.pricing import format_usd

        mode = self.session.runner.mode
        shell = " │ shell mode (! to leave)" if self.shell_mode else ""
        cost = self.stats.settle(self.session.model, self.session.pricing).cost_usd
        spent = f" │ {format_usd(cost)}" if cost is not None and self.stats.requests else ""
        sandbox = self.sandbox_label(mode)
        agents = self.session.subagents
        working = len(agents.running()) if agents is not None else 0
        background = f" │ {working} agent{'s' * (working != 1)} working" if working else ""
        return (
            f" {self.session.model} │ {mode} (shift+tab){sandbox}{background} │ "
            f"{self.context_line()}{spent}{shell}"
        )

    def sandbox_label(self, mode: str) -> str:
        """` · sandboxed` while commands run in the sandbox (yolo mode with `auto`), or
        ` · no sandbox` when yolo runs them unprotected because it cannot be had."""
        sandbox = self.session.tool_ctx.sandbox
        if sandbox is None or sandbox.mode_for(mode) == "off":
            return ""
        if sandbox.unavailable_reason() is not None:
            return " · no sandbox"
        return " · sandboxed" if sandbox.mode_for(mode) == "workspace-write" else " · read-only"

    def context_line(self) -> str:
        used, about = self.stats.last_prompt_tokens, "~" * self.stats.last_estimated
        window = self.session.context_window
        if not window:
            return f"context {about}{used:,} tokens"
        return f"context {about}{used:,} / {window:,} tokens ({used / window:.0%})"

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60} min {seconds % 60} s"

    # --- the loop ------------------------------------------------------------------------

    async def run(self, first_message: str | None = None) -> int:
        self._banner()
        warm_up = asyncio.create_task(self._warm_up())
        persistence = self.session.observer(Persistence)
        if persistence is not None:  # git for checkpoints, while the user types
            persistence.start_warm_up()
        try:
            if first_message:
                self.console.print(Text.assemble((">", "bold"), f" {first_message}"))
                await self.handle(first_message)
            await self._loop()
        finally:
            warm_up.cancel()
            if self.io.alerts is not None:
                await self.io.alerts.settle()
        return 0

    async def _loop(self) -> None:
        armed = False
        while not self.exit_requested:
            try:
                text = await self.prompt.prompt_async("! " if self.shell_mode else "> ")
            except KeyboardInterrupt:
                if armed:
                    return
                armed = True
                self.console.print("[dim]Press Ctrl+C again (or Ctrl+D) to exit.[/dim]")
                continue
            except EOFError:
                return
            armed = False
            await self.handle(text)

    async def handle(self, text: str) -> None:
        """One line of input: a shell toggle or command, a slash command, or a message."""
        stripped = text.strip()
        if stripped == "!":
            self.shell_mode = not self.shell_mode
            state = "on: lines run in your shell" if self.shell_mode else "off"
            self.console.print(f"[dim]Shell mode {state}.[/dim]")
        elif self.shell_mode and stripped:
            await self.shell(stripped)
        elif stripped.startswith("!"):
            await self.shell(stripped[1:].strip())
        elif stripped.startswith("/"):
            await commands.dispatch(self, stripped)
        elif stripped:
            await self.send(text)

    async def shell(self, command: str) -> None:
        if not command:
            return
        task = asyncio.ensure_future(
            run_user_shell(
                command,
                cwd=self.session.cwd,
                on_output=self._shell_line,
                credentials=self.session.tool_ctx.credentials,
            )
        )
        done, result = await self.io.run_cancellable(task)
        if not done:
            self.console.print("[yellow]Shell command interrupted.[/yellow]")
            return
        status = (
            Text("exit 0", style="green")
            if result.exit_code == 0
            else Text(f"exit {result.exit_code}", style="red")
        )
        note = " · the output goes with your next message"
        self.console.print(Text.assemble(status, note, style="dim"))
        self.pending_context.append(result.as_context())

    def _shell_line(self, line: str) -> None:
        self.console.out(line.rstrip("\n"), highlight=False)

    async def send(self, text: str, *, echo: str | None = None) -> None:
        """Send a message to the agent, with @path attachments and pending shell output."""
        if echo:
            self.console.print(Text.assemble((">", "bold"), f" {echo}"))
        workspace = self.session.tool_ctx.workspace
        expanded = await asyncio.to_thread(expand_at_references, text, workspace)
        servers = {f"{ref.server}:" for ref in find_mcp_references(text, self.session.mcp)}
        for item in expanded.attached:
            if not (item.error and item.ref.startswith(tuple(servers))):
                self._note_attachment(item)
        body = expanded.text + await self._mcp_resources(text) if servers else expanded.text
        images = await images_for_model(
            self.session.tool_ctx, [*expanded.images, *await pasted_for(self, text)]
        )
        for note in images.notes:
            self.console.print(Text(f"  ⚠ {note}", style="yellow"))
        message = "\n\n".join([*self.pending_context, body, *images.sections])
        self.pending_context.clear()
        started = time.monotonic()
        task = asyncio.ensure_future(self._consume(message, images.media))
        done, _ = await self.io.run_cancellable(task)
        if not done:
            self.renderer.abort()
            self._count_interrupted()
            self.console.print("[yellow]Interrupted.[/yellow] [dim]What next?[/dim]")
            return
        self._turn_done(started)

    def _count_interrupted(self) -> None:
        """A cancelled turn's cut-short request still used tokens and fills the context:
        count it (estimated), so /stats and the footer's context figure stay true."""
        cut = self.session.agent.take_unreported()
        for usage in cut:
            self.stats.observe(AssistantMessage(text="", usage=usage))
        if not cut:
            self.recount_context()

    def _turn_done(self, started: float) -> None:
        """Notify that the turn ended, when it ran long enough since the user last acted
        (sent it, or answered one of its questions)."""
        alerts = self.io.alerts
        if alerts is None:
            return
        now = time.monotonic()
        unattended = now - max(started, self.io.last_answer)
        alerts.turn_done(now - started, self._last_answer(), unattended=unattended)

    def _last_answer(self) -> str:
        """The last thing the model said this turn (for the notification)."""
        for message in reversed(self.session.agent.conversation.messages):
            role = message.get("role")
            if role == "user":
                return ""
            content = message.get("content")
            if role == "assistant" and isinstance(content, str) and content.strip():
                return content
        return ""

    async def _mcp_resources(self, text: str) -> str:
        """The block of `@server:uri` resources the message names (read from the servers),
        to go after the message and its file attachments."""
        with_block, errors = await expand_mcp_resources(text, self.session.mcp)
        for error in errors:
            self.console.print(Text(f"  ⚠ {error}", style="yellow"))
        return with_block[len(text) :]

    def _note_attachment(self, item: Attachment) -> None:
        if item.error:
            self.console.print(Text(f"  ⚠ {item.error}", style="yellow"))
            return
        cut = " (truncated)" if item.truncated else ""
        where = self.session.tool_ctx.workspace.display(item.path) if item.path else item.ref
        self.console.print(Text(f"  ⎿ attached {where} ({item.bytes:,} bytes){cut}", style="dim"))

    async def _consume(self, message: str, media: tuple[dict[str, Any], ...] = ()) -> None:
        self.renderer.start_turn()
        try:
            async for event in self.session.run(message, media=media):
                self.stats.observe(event)
                self.renderer.handle(event)
        except ModelError as exc:  # raised before the loop could report it
            self.console.print(Text(str(exc), style="red"))

    def _background_step(self, event: SubagentEvent) -> None:
        """A background agent's step: counted, shown live during a turn; its end is
        announced (its report reaches the model with the next message)."""
        self.stats.observe(event)
        if self.io.turn is not None:
            self.renderer.handle(event)
        if not isinstance(event.event, TurnEnd):
            return
        line = Text("  ⎿ ", style="dim")
        line.append(event.agent, style="magenta")
        line.append(
            f" finished in the background ({event.description}); its report goes to the "
            "model with your next message.",
            style="dim",
        )
        if self.io.turn is not None:
            self.renderer.note(line)
        else:
            from prompt_toolkit.application import run_in_terminal

            run_in_terminal(lambda: self.console.print(line))

    # --- state changes -------------------------------------------------------------------

    def set_mode(self, mode: ApprovalMode, *, quiet: bool = False) -> None:
        self.session.runner.set_mode(mode)
        if not quiet:
            self.console.print(Text.assemble("Approval mode: ", (mode, "bold")))

    async def fetch_models(self) -> list[dict[str, Any]]:
        if not self.served_models:
            with contextlib.suppress(ModelError):
                self.served_models = await self.session.client.list_models()
        return self.served_models

    async def _warm_up(self) -> None:
        """Import the HTTP client in a thread while the user types, then list the models
        (for /model completion), so the first message does not wait for either."""
        from qwen_code.llm.client import preload

        with contextlib.suppress(Exception):
            await asyncio.to_thread(preload)
            await self.fetch_models()

    def recount_context(self) -> None:
        """After the conversation was replaced (resume, restore, clear): the footer's
        context figure is an estimate until the next request brings the server's count."""
        agent = self.session.agent
        schemas = agent.tools.registry.schemas()
        self.stats.last_prompt_tokens = agent.budget.estimate_all(
            agent.conversation.messages, schemas
        )
        self.stats.last_estimated = True

    def show_resumed(self, messages: list[dict[str, Any]]) -> None:
        """After resuming: say so, and show the last exchange for context."""
        self.recount_context()
        users = [m for m in messages if m.get("role") == "user"]
        self.console.print(
            Text(
                f"Resumed session {self.session.id[:8]} ({len(messages)} messages, "
                f"{len(users)} prompts).",
                style="dim",
            )
        )
        last = next(
            (
                m
                for m in reversed(messages)
                if m.get("role") == "assistant"
                and isinstance(m.get("content"), str)
                and m["content"].strip()
            ),
            None,
        )
        if last is not None:
            preview = last["content"].strip()[:300]
            self.console.print(Text.assemble(("Last answer: ", "dim"), preview))

    def _banner(self) -> None:
        session = self.session
        self.console.print(
            Text.assemble(
                ("qwen-code", "bold"),
                f" {__version__} · {session.model} · {session.runner.mode} mode · {session.cwd}",
            )
        )
        self.console.print("[dim]/help for commands · @file to attach · !cmd for the shell[/dim]")
        for note in self.notes:
            self.console.print(Text(f"note: {note}", style="yellow"))


async def run_interactive(
    env: Environment,
    settings: Settings,
    provider: Provider,
    *,
    first_message: str | None = None,
    latest: bool = False,
    session_id: str | None = None,
) -> int:
    """Open a session in `env.cwd` (new, or a saved one to continue) and run the REPL on
    `env`'s terminal until the user leaves."""
    from qwen_code.session import resume
    from qwen_code.session.setup import open_session
    from qwen_code.ui.terminal import Terminal, make_console

    console = make_console(Terminal.detect(stdout=env.stdout, stdin=env.stdin), env.stdout)
    io = ReplIO(console=console)
    io.alerts = alerts_for(io, settings)  # a question while the session opens notifies too
    cwd, home = env.cwd, env.home
    if session_id == resume.PICK:
        from qwen_code.ui.picker import pick_session

        session_id = await pick_session(console, home, cwd)
    saved = resume.resolve(home, cwd, latest=latest, session_id=session_id)
    session = await open_session(
        settings,
        provider,
        cwd=cwd,
        home=home,
        approver=io.approver(cwd=cwd, project_trusted=project_trusted(settings)),
        resume=saved,
    )
    from qwen_code.ui.headless import startup_notes

    notes = [*settings.notices, *startup_notes(session, saved)]
    try:
        repl = Repl(session, io=io, home=home, notes=notes)
        if saved is not None:
            repl.show_resumed(saved.messages)
        return await repl.run(first_message)
    finally:
        await session.aclose()
        if (hint := resume.resume_hint(session)) is not None:
            console.print(Text(hint, style="dim"))


def alerts_for(io: ReplIO, settings: Settings) -> Alerts:
    """The REPL's notifications on its console's terminal (`general.notifications`)."""
    return Alerts(Notifier(settings, io.console.file), show=io.show_note)


def project_trusted(settings: Settings) -> bool:
    """Whether saving a rule in the project's settings is safe to offer without a
    warning (the folder is trusted, or trust is turned off)."""
    return settings.trust is None or settings.trust.granted
