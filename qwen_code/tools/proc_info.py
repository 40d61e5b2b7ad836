"""What the processes of a group are doing, read from Linux `/proc`.

Everything here degrades to "nothing found" where `/proc` is missing or a file cannot be
read (another OS, a process that just exited, a restricted container), so callers
simply fall back to their timeouts.
"""

from __future__ import annotations

import platform
import stat
from pathlib import Path

_PROC = Path("/proc")
_READ_SYSCALLS = {
    "x86_64": {0, 17, 19, 295, 327},  # read, pread64, readv, preadv, preadv2
    "aarch64": {63, 65, 67, 69, 286},
}
_OPEN_SYSCALLS = {"x86_64": {2, 257, 437}, "aarch64": {56, 437}}  # open, openat, openat2
_MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
_FIFO_OPEN_WCHAN = {"wait_for_partner", "fifo_open"}
_TTY_READ_WCHAN = {"n_tty_read", "wait_woken"}


def _stat_fields(pid: str | int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the process group."""
    pids: list[int] = []
    try:
        entries = [entry.name for entry in _PROC.iterdir()]
    except OSError:
        return pids
    for name in entries:
        if not name.isdigit():
            continue
        fields = _stat_fields(name)
        if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in "ZX":
            pids.append(int(name))
    return pids


def cpu_ticks(pids: list[int]) -> tuple[int, ...]:
    """User + system CPU time of each process, in clock ticks (compare two samples)."""
    ticks = []
    for pid in sorted(pids):
        fields = _stat_fields(pid)
        if fields and len(fields) > 12:
            ticks.append(int(fields[11]) + int(fields[12]))
    return tuple(ticks)


def _comm(pid: int) -> str:
    try:
        return (_PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return "?"


def _fd_target(pid: int, fd: int) -> str:
    try:
        return str((_PROC / str(pid) / "fd" / str(fd)).readlink())
    except OSError:
        return ""


def _is_terminal(target: str) -> bool:
    return target.startswith(("/dev/pts/", "/dev/tty")) or target == "/dev/console"


def _is_named_pipe(pid: int, fd: int, target: str) -> bool:
    if not target.startswith("/"):
        return False  # pipe:[123] (anonymous) or socket:[123]
    try:
        return stat.S_ISFIFO((_PROC / str(pid) / "fd" / str(fd)).stat().st_mode)
    except OSError:
        return False


def _syscall(pid: int) -> tuple[int, int] | None:
    """(syscall number, first argument) the process is blocked in, when readable."""
    try:
        fields = (_PROC / str(pid) / "syscall").read_text().split()
    except OSError:
        return None
    if len(fields) < 2 or not fields[0].isdigit():
        return None  # "running", or an empty file
    try:
        return int(fields[0]), int(fields[1], 16)
    except ValueError:
        return None


def _wchan(pid: int) -> str:
    try:
        return (_PROC / str(pid) / "wchan").read_text().strip()
    except OSError:
        return ""


def _fds(pid: int) -> list[int]:
    try:
        return [int(p.name) for p in (_PROC / str(pid) / "fd").iterdir() if p.name.isdigit()]
    except OSError:
        return []


def _terminal_fds(pid: int) -> list[str]:
    targets = (_fd_target(pid, fd) for fd in _fds(pid))
    return [t for t in targets if _is_terminal(t)]


def _blocked(pid: int, machine: str) -> str | None:
    wchan = _wchan(pid)
    call = _syscall(pid)
    if call is not None and machine in _READ_SYSCALLS:
        number, fd = call
        if number in _READ_SYSCALLS[machine]:
            target = _fd_target(pid, fd)
            if _is_terminal(target):
                return f"reading the terminal {target}"
            if _is_named_pipe(pid, fd, target):
                return f"reading the named pipe {target}"
        if number in _OPEN_SYSCALLS[machine] and wchan in _FIFO_OPEN_WCHAN:
            return "opening a named pipe"
        return None
    if wchan in _FIFO_OPEN_WCHAN:
        return "opening a named pipe"
    if wchan in _TTY_READ_WCHAN and (ttys := _terminal_fds(pid)):
        return f"reading the terminal {ttys[0]}"
    return None


def blocked_reader(pids: list[int]) -> str | None:
    """ "python3 (pid 12) is reading the terminal /dev/pts/3" for the first process of
    `pids` blocked reading a terminal or a named pipe, or opening a named pipe."""
    machine = platform.machine().lower()
    machine = _MACHINE.get(machine, machine)
    for pid in sorted(pids):
        what = _blocked(pid, machine)
        if what:
            return f"{_comm(pid)} (pid {pid}) is {what}"
    return None


def _listening_inodes(pid: int) -> dict[str, int]:
    """Socket inode → port, for TCP sockets in the LISTEN state, in the network namespace
    of `pid` (a sandboxed command has its own)."""
    inodes: dict[str, int] = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = (_PROC / str(pid) / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":
                inodes[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    return inodes


def _net_namespace(pid: int) -> str:
    try:
        return str((_PROC / str(pid) / "ns" / "net").readlink())
    except OSError:
        return ""


def listening_ports(pids: list[int]) -> list[int]:
    """TCP ports the processes listen on, sorted."""
    tables: dict[str, dict[str, int]] = {}
    ports: set[int] = set()
    for pid in pids:
        namespace = _net_namespace(pid)
        if namespace not in tables:
            tables[namespace] = _listening_inodes(pid)
        inodes = tables[namespace]
        if not inodes:
            continue
        for fd in _fds(pid):
            target = _fd_target(pid, fd)
            if target.startswith("socket:[") and target[8:-1] in inodes:
                ports.add(inodes[target[8:-1]])
    return sorted(ports)
