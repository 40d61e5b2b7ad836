"""Tab completion for the REPL prompt: slash commands, their arguments and `@path`s.

`get_completions` runs on every keystroke, so it never starts a process: workspace paths
come from a `FileIndex` that lists the files once (ripgrep or git, so ignored files stay
out) and serves that list for a few seconds; an expired list is still served while a
background thread rebuilds it. Matching is plain string work over the cached list.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from qwen_code.ui.attachments import escape_path, list_files_blocking, unescape_path

ArgCompleter = Callable[[str], list[str]]
"""Given the argument text typed so far, candidate values for its last word."""
SlashCommand = tuple[str, str, ArgCompleter | None]
"""(name with or without the leading `/`, description, argument completer or None)."""
CommandSource = Callable[[], Sequence[SlashCommand]]

MAX_CANDIDATES = 50
INDEX_TTL_S = 5.0
MAX_INDEX_FILES = 200_000
"""Files kept in the index; past this a huge tree is only partly completable."""

_AT_TOKEN_RE = re.compile(r"(?<![^\s(\[{\"'])@((?:\\.|[^\s\\])*\\?)\Z")
"""The `@` token that ends at the cursor (same start rule as attachments' references)."""
_SLASH_RE = re.compile(r"/(\S*)(?:\s+(.*))?\Z", re.DOTALL)


class _Entry(NamedTuple):
    path: str
    """Relative to the root, `/`-separated, no trailing slash."""
    is_dir: bool
    lower: str
    base: str
    """The lower-cased last component."""
    depth: int


class FileIndex:
    """Workspace-relative files that git would not ignore, plus the directories holding
    them, cached for `ttl_s` seconds. Only the first lookup waits for the listing."""

    def __init__(
        self,
        root: Path,
        *,
        ttl_s: float = INDEX_TTL_S,
        lister: Callable[[Path], list[Path]] = list_files_blocking,
    ) -> None:
        self.root = root
        self.ttl_s = ttl_s
        self._lister = lister
        self._lock = threading.Lock()
        self._entries: list[_Entry] | None = None
        self._stamp = 0.0
        self._loading = False

    def entries(self) -> list[_Entry]:
        with self._lock:
            entries, age = self._entries, time.monotonic() - self._stamp
        if entries is None:
            return self._load()
        if age > self.ttl_s:
            self.refresh_in_background()
        return entries

    def refresh_in_background(self) -> None:
        """Rebuild the index in a daemon thread (no-op while a rebuild runs)."""
        with self._lock:
            if self._loading:
                return
            self._loading = True
        threading.Thread(target=self._background_load, name="file-index", daemon=True).start()

    def _background_load(self) -> None:
        try:
            self._load()
        finally:
            with self._lock:
                self._loading = False

    def _load(self) -> list[_Entry]:
        try:
            files = self._lister(self.root)
        except OSError:
            files = []
        entries = _build_entries(self.root, files)
        with self._lock:
            self._entries, self._stamp = entries, time.monotonic()
        return entries


def _build_entries(root: Path, files: list[Path]) -> list[_Entry]:
    """Entries for `files` under `root` and every directory between, in index order.
    String slicing, not `Path.relative_to`: it is much faster on a 100k-file tree."""
    prefix = os.fspath(root).rstrip(os.sep) + os.sep
    paths: set[str] = set()
    dirs: set[str] = set()
    for file in files[:MAX_INDEX_FILES]:
        name = os.fspath(file)
        if not name.startswith(prefix) or len(name) == len(prefix):
            continue
        rel = name[len(prefix) :].replace(os.sep, "/")
        paths.add(rel)
        cut = rel.rfind("/")
        while cut > 0 and rel[:cut] not in dirs:
            dirs.add(rel[:cut])
            cut = rel.rfind("/", 0, cut)
    entries = [_entry(p, is_dir=False) for p in paths]
    entries += [_entry(d, is_dir=True) for d in dirs]
    entries.sort(key=lambda e: (e.depth, len(e.path), e.path))
    return entries


def _entry(path: str, *, is_dir: bool) -> _Entry:
    lower = path.lower()
    return _Entry._make((path, is_dir, lower, lower.rpartition("/")[2], path.count("/")))


def rank_paths(entries: Sequence[_Entry], query: str, limit: int) -> list[_Entry]:
    """Best matches for `query` (case-insensitive), best first. `entries` must be in
    index order (shallow first, then short first), which lets the scan stop early.

    Tier 0: the path continues the query within one directory level (`src/a` →
    `src/app.py`, and `` → top-level entries), alphabetical; tier 1: the basename starts
    with the query's last component (and the query's directory part is in the path);
    tier 2: the query is a substring of the path. Tiers 1 and 2 keep the index order.
    """
    q = query.lower()
    q_dir, _, q_base = q.rpartition("/")
    q_depth = q.count("/")
    tiers: tuple[list[_Entry], list[_Entry], list[_Entry]] = ([], [], [])
    for entry in entries:
        # Tier-0 entries all have the query's depth; past it only a short list can grow.
        if entry.depth > q_depth and (not q or len(tiers[0]) + len(tiers[1]) >= limit):
            break
        if q_base not in entry.lower or q_dir not in entry.lower:
            continue  # needed by every tier: a cheap filter before the full check
        tier = _tier(entry, q, q_dir, q_base)
        if tier is not None and (tier == 0 or len(tiers[tier]) < limit):
            tiers[tier].append(entry)
    tiers[0].sort(key=lambda e: e.path)
    return (tiers[0] + tiers[1] + tiers[2])[:limit]


def _tier(entry: _Entry, q: str, q_dir: str, q_base: str) -> int | None:
    p = entry.lower
    if p.startswith(q) and "/" not in p[len(q) :]:
        return 0
    if not q:
        return None
    if entry.base.startswith(q_base) and q_dir in p[: len(p) - len(entry.base)]:
        return 1
    return 2 if q in p else None


class ReplCompleter(Completer):
    """Completes `/command`, `/command ARG` and `@path` (see the module docstring).

    `commands` is called on each slash completion, so a command table that changes
    (skills, MCP prompts) is picked up. With `root=None` no paths are completed. Wrap it
    in prompt_toolkit's `ThreadedCompleter` to keep even the first index build off the
    input loop.
    """

    def __init__(
        self,
        commands: CommandSource,
        root: Path | None,
        *,
        max_candidates: int = MAX_CANDIDATES,
        ttl_s: float = INDEX_TTL_S,
        index: FileIndex | None = None,
    ) -> None:
        self.commands = commands
        self.max_candidates = max_candidates
        self.index = index or (FileIndex(root, ttl_s=ttl_s) if root is not None else None)

    def prefetch(self) -> None:
        """Start listing the workspace now, so the first `@` does not wait for it."""
        if self.index is not None:
            self.index.refresh_in_background()

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        token = _AT_TOKEN_RE.search(before)
        if token is not None:
            return self._path_completions(token.group(1))
        if before.startswith("/") and "\n" not in before:
            return self._slash_completions(before)
        return []

    def _path_completions(self, raw: str) -> list[Completion]:
        if self.index is None:
            return []
        query = unescape_path(raw.removesuffix("\\") if _odd_backslash(raw) else raw)
        completions = []
        for entry in rank_paths(self.index.entries(), query, self.max_candidates):
            shown = entry.path + ("/" if entry.is_dir else "")
            completions.append(
                Completion(
                    escape_path(shown),
                    start_position=-len(raw),
                    display=shown,
                    display_meta="dir" if entry.is_dir else "file",
                )
            )
        return completions

    def _slash_completions(self, before: str) -> list[Completion]:
        match = _SLASH_RE.match(before)
        if match is None:
            return []
        name, arg = match.group(1), match.group(2)
        commands = [(n.lstrip("/"), d, a) for n, d, a in self._safe_commands()]
        if arg is None:
            return self._command_names(name, commands)
        for cmd_name, _, arg_completer in commands:
            if cmd_name.lower() == name.lower() and arg_completer is not None:
                return self._arguments(arg, arg_completer)
        return []

    def _safe_commands(self) -> Sequence[SlashCommand]:
        try:
            return self.commands()
        except Exception:  # a broken source must not break typing
            return []

    def _command_names(self, typed: str, commands: list[SlashCommand]) -> list[Completion]:
        names = [name for name, _, _ in commands]
        descriptions = {name: desc for name, desc, _ in commands}
        return [
            Completion(
                f"/{name}",
                start_position=-(len(typed) + 1),
                display=f"/{name}",
                display_meta=descriptions[name],
            )
            for name in _filter(names, typed)[: self.max_candidates]
        ]

    def _arguments(self, arg: str, arg_completer: ArgCompleter) -> list[Completion]:
        word = "" if not arg or arg[-1].isspace() else arg.split()[-1]
        try:
            values = list(arg_completer(arg))
        except Exception:  # same as above: completion stays best effort
            return []
        chosen = _filter(values, word)[: self.max_candidates]
        return [Completion(v, start_position=-len(word)) for v in chosen]


def _filter(values: Sequence[str], typed: str) -> list[str]:
    """Values starting with `typed` (case-insensitive), then ones containing it; each
    group in the given order, duplicates dropped."""
    t = typed.lower()
    prefix = [v for v in values if v.lower().startswith(t)]
    inner = [v for v in values if t in v.lower() and not v.lower().startswith(t)]
    return list(dict.fromkeys(prefix + inner))


def _odd_backslash(raw: str) -> bool:
    """True when `raw` ends in an unpaired `\\` (the user is about to type `\\ `)."""
    return (len(raw) - len(raw.rstrip("\\"))) % 2 == 1
