"""Running the services as real processes for end-to-end tests."""
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path
    health_url: str | None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()

    def terminate(self, timeout_s: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


def spawn(name: str, module: str, env: dict, log_dir: Path, health_url: str | None = None,
          args: tuple = ()) -> Process:
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env={**os.environ, "LOG_JSON": "true", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Process(name, popen, log_path, health_url)


def wait_ready(process: Process, timeout_s: float = 120) -> None:
    """Poll the process's /health/ready until it answers 200; fail with its log otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{process.log()[-3000:]}")
        try:
            with urllib.request.urlopen(process.health_url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{process.name} not ready after {timeout_s}s:\n{process.log()[-3000:]}")
