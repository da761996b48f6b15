"""Background service processes for the native stack: spawn, record, check, stop.

Each process runs in its own session (so a signal reaches its whole group, and closing the
terminal does not stop it), logs to `<run_dir>/logs/<name>.log`, and is recorded in
`<run_dir>/pids/<name>.json`. Only recorded processes whose command line still names their
module are ever signalled: a reused pid is never mistaken for ours.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Record:
    name: str
    pid: int
    module: str
    port: int
    url: str
    health_url: str
    log: str


def _record_path(run_dir: Path, name: str) -> Path:
    return run_dir / "pids" / f"{name}.json"


def records(run_dir: Path) -> list[Record]:
    folder = run_dir / "pids"
    if not folder.is_dir():
        return []
    return [Record(**json.loads(path.read_text())) for path in sorted(folder.glob("*.json"))]


def alive(record: Record) -> bool:
    """The recorded process still runs (not a zombie) and is still the module we started."""
    proc = Path("/proc") / str(record.pid)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and record.module in cmdline


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def spawn(run_dir: Path, name: str, module: str, port: int, env: dict, args: tuple = (),
          health_path: str = "/health/ready", url: str = "") -> Record:
    """Start `python -m module` in its own session, logging to the run dir; record it."""
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (run_dir / "pids").mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = Record(name, popen.pid, module, port, url, f"http://127.0.0.1:{port}{health_path}", str(log_path))
    _record_path(run_dir, name).write_text(json.dumps(asdict(record)))
    return record


def ready(record: Record) -> bool:
    try:
        with urllib.request.urlopen(record.health_url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_ready(records_: list[Record], timeout_s: float) -> None:
    """Until every process answers its readiness check; raise with the log tail of a laggard."""
    deadline = time.monotonic() + timeout_s
    waiting = list(records_)
    while waiting:
        for record in list(waiting):
            if not alive(record):
                raise RuntimeError(f"{record.name} exited; the end of {record.log}:\n{tail(record.log)}")
            if ready(record):
                waiting.remove(record)
        if waiting and time.monotonic() > deadline:
            laggard = waiting[0]
            raise TimeoutError(f"{laggard.name} not ready after {timeout_s:.0f}s; the end of {laggard.log}:\n"
                               f"{tail(laggard.log)}")
        if waiting:
            time.sleep(0.5)


def tail(path: str, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(run_dir: Path, record: Record, timeout_s: float) -> None:
    """SIGTERM the process group, SIGKILL it after `timeout_s`; forget the record."""
    if alive(record):
        _signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while alive(record) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(record):
            _signal_group(record.pid, signal.SIGKILL)
            while alive(record):
                time.sleep(0.1)
    _record_path(run_dir, record.name).unlink(missing_ok=True)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # started with start_new_session: the group id is the pid
    except ProcessLookupError:
        pass
