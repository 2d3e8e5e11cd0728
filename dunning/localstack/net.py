"""Small helpers shared by both servers: ports, addresses, processes, log tails."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the kernel's pick; racy, good enough for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def split_address(address: str) -> tuple[str, int]:
    """`host:port` -> (host, port)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    return host, int(port)


def alive(pid: int | None, must_mention: str | None = None) -> bool:
    """Whether pid runs (not a zombie) and, if given, its command line mentions a string.

    The second check guards against a stale pid file whose pid was reused.
    """
    if pid is None:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return must_mention is None or must_mention in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not found)"
    return "\n".join(text.splitlines()[-lines:])
