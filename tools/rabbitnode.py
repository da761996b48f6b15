"""A private RabbitMQ node on its own ports and data directory, that `make chaos` and the outage
tests may stop and start without touching anyone's broker.

It runs the system's `rabbitmq-server` with its own node name, AMQP and distribution ports, data,
log, config and (empty) plugins files; its data survives `stop()`/`start()` like a real restart.
"""
import os
import pwd
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from shared.localpg import free_port

SYSTEM_USER = "rabbitmq"  # as root, the server scripts run the node as this user


def available() -> bool:
    return shutil.which("rabbitmq-server") is not None and shutil.which("rabbitmqctl") is not None


class RabbitNode:
    def __init__(self, base_dir: Path, name: str | None = None):
        self.base_dir = base_dir.resolve()
        self.node = f"{name or 'private-' + uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self._server: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict:
        base = self.base_dir
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }

    def _prepare(self) -> None:
        base = self.base_dir
        for folder in (base, base / "mnesia", base / "log"):
            folder.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "advanced.config").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SYSTEM_USER)
            for path in [base, *base.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, timeout_s: float = 90) -> None:
        """Start the node and return once it accepts AMQP connections."""
        self._prepare()
        with (self.base_dir / "server.out").open("ab") as out:
            self._server = subprocess.Popen(["rabbitmq-server"], env=self._env(), stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.port):
            if self._server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {self.node} did not start; see {self.base_dir / 'server.out'}")
            time.sleep(0.2)

    def stop(self, timeout_s: float = 60) -> None:
        """Stop the node (its queues are kept on disk); a no-op when it is not running."""
        if self._server is None or self._server.poll() is not None:
            return
        try:
            self._ctl("stop", timeout_s=timeout_s)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        try:
            self._server.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self._server.pid, 9)
            self._server.wait()

    def _ctl(self, *args: str, timeout_s: float) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, *args], env=self._env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout_s)


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
