"""`make test-docker`: the compose stack for real, on its own project name and free ports.

Starts the Docker engine if needed, builds the images (local stand-ins for the upstream bases
where Docker Hub cannot be reached), runs `make up` in Docker mode and then checks, through the
ports the stack publishes on 127.0.0.1 only, what a user would notice: every service healthy, the
demo loaded, a posted product embedded, recommendations served, three embedder workers sharing the
queue, a killed worker restarted without losing anything accepted, and `make down` followed by
`make up` keeping the data. Each step prints its time. The stack and its volumes are removed at
the end (KEEP_STACK=1 keeps them). Docker itself is asked only for container states and restarts.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from shared import localpg
from shared.amqp import Topology
from tests.processes import ROOT
from tools import dockerhost
from tools.demo import demo_data

PROJECT = os.environ.get("COMPOSE_PROJECT_NAME", "recommender-test-docker")
RUN = uuid.uuid4().hex[:8]
TIMES: list[tuple[str, float]] = []


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@contextmanager
def step(name: str):
    print(f"--- {name}", flush=True)
    started = time.monotonic()
    yield
    TIMES.append((name, time.monotonic() - started))
    print(f"--- {name}: ok in {TIMES[-1][1]:.1f} s", flush=True)


def stack_env() -> dict:
    ports = {name: str(localpg.free_port()) for name in ("API_PORT", "INGEST_PORT", "RABBITMQ_UI_PORT")}
    env = {**os.environ, **ports, "STACK_MODE": "docker", "COMPOSE_PROJECT_NAME": PROJECT,
           "EMBEDDER_WORKERS": "2", "BATCH_SIZE": "8"}
    for native_only in ("DATABASE_URL", "AMQP_URL", "AMQP_PREFIX", "MODE", "PAGE_KEY"):
        env.pop(native_only, None)
    env["RUN_DIR"] = tempfile.mkdtemp(prefix="test-docker-")  # where make up keeps the demo keys
    return env


def run(args: list[str], env: dict, timeout_s: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    check(result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def compose(env: dict, *args: str, timeout_s: float = 900) -> subprocess.CompletedProcess:
    return run(["docker", "compose", *args], env, timeout_s)


def http(method: str, url: str, body: object = None, auth: tuple[str, str] | None = None,
         key: str | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(what: str, probe, timeout_s: float = 180, every_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = probe()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


class Stack:
    """The running stack as a user sees it: its published ports."""

    def __init__(self, env: dict):
        self.env = env
        self.api = f"http://127.0.0.1:{env['API_PORT']}"
        self.ingest = f"http://127.0.0.1:{env['INGEST_PORT']}"
        self.broker = f"http://127.0.0.1:{env['RABBITMQ_UI_PORT']}/api"
        self.broker_auth = ("recommender", env.get("RABBITMQ_PASSWORD", "recommender"))
        self.queue = Topology(env.get("AMQP_PREFIX", "recommender")).queue
        self.keys: dict[str, str] = {}

    def load_keys(self) -> None:
        """The demo tenant's keys that make up made and saved."""
        path = Path(self.env["RUN_DIR"]) / f"demo-keys-{PROJECT}.json"
        check(path.exists(), f"make up saved no demo keys in {path}")
        self.keys = json.loads(path.read_text())

    def post_products(self, count: int, tag: str) -> list[str]:
        products = [{"id": f"docker-{RUN}-{tag}-{i}", "title": f"Test film {tag} {i}",
                     "description": f"A film about lighthouse keepers, number {i} of the {tag} batch.",
                     "genres": ["Drama"]} for i in range(count)]
        status, body = http("POST", f"{self.ingest}/v1/products", products, key=self.keys["write"])
        check(status == 202, f"POST /v1/products answered {status}: {body}")
        return body["ids"]

    def embedded(self, ids: list[str]) -> int:
        ready = 0
        for pid in ids:
            status, body = http("GET", f"{self.api}/v1/products/{pid}", key=self.keys["read"])
            ready += status == 200 and body["embedding_status"] == "ready"
        return ready

    def wait_embedded(self, ids: list[str], timeout_s: float = 300) -> None:
        pending = list(ids)

        def all_ready():
            nonlocal pending
            pending = [pid for pid in pending if not self.embedded([pid])]
            return not pending

        wait_for(f"{len(ids)} products embedded", all_ready, timeout_s)

    def consumers(self) -> list[dict]:
        status, body = http("GET", f"{self.broker}/consumers/%2F", auth=self.broker_auth)
        check(status == 200, f"the management API answered {status}")
        return [consumer for consumer in body if consumer["queue"]["name"] == self.queue]

    def delivered_per_consumer(self) -> list[int]:
        counts = []
        for consumer in self.consumers():
            channel = consumer["channel_details"]["name"]
            status, body = http("GET", f"{self.broker}/channels/{urllib.request.quote(channel, safe='')}",
                                auth=self.broker_auth)
            counts.append(body.get("message_stats", {}).get("deliver_get", 0) if status == 200 else 0)
        return counts


def containers(env: dict, service: str | None = None) -> list[dict]:
    args = ["ps", "--all", "--format", "json"] + ([service] if service else [])
    out = compose(env, *args).stdout.strip()
    if not out:
        return []
    rows = json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines()]
    return rows


def inspect(container: str, field: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", f"{{{{{field}}}}}", container], capture_output=True,
                          text=True, check=True).stdout.strip()


def crash(container: str) -> None:
    """SIGKILL the container's process from the host, as a crash or the OOM killer would. (`docker kill`
    counts as a deliberate stop, which restart policies respect.)"""
    os.kill(int(inspect(container, ".State.Pid")), signal.SIGKILL)


def image_sizes(env: dict) -> dict[str, int]:
    images = json.loads(compose(env, "config", "--format", "json").stdout)["services"]
    sizes = {}
    for name, service in images.items():
        image = service.get("image") or f"{PROJECT}-{name}"
        result = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], capture_output=True, text=True)
        if result.returncode == 0:
            sizes[image] = int(result.stdout)
    return sizes


def checks(env: dict, started: list) -> None:
    stack = Stack(env)
    demo = demo_data()
    user = demo["users"][0]

    with step("docker engine and compose v2"):
        started.append(dockerhost.ensure_engine())
        dockerhost.ensure_compose()
    with step("base images (stand-ins where Docker Hub cannot be reached)"):
        dockerhost.build_standins(missing_only=True)
    with step("build the images"):
        compose(env, "down", "--volumes", "--remove-orphans")
        compose(env, "build")
        for image, size in sorted(image_sizes(env).items()):
            print(f"    {image}: {size / 1e6:.0f} MB")
        for service in ("api", "ingest", "embedder"):
            found = subprocess.run(["docker", "run", "--rm", "--entrypoint", "python", f"{PROJECT}-{service}", "-c",
                                    "import importlib.util as u, os; print(os.getuid(), u.find_spec('torch') is None)"],
                                   capture_output=True, text=True, check=True).stdout.split()
            check(found[0] != "0" and found[1] == "True", f"the {service} image runs as root or carries torch: {found}")
        # The model is inside the embedder image: it loads with no network at all.
        loaded = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python",
                                 f"{PROJECT}-embedder", "-c", "from shared.settings import EmbedderSettings as S; "
                                 "from services.embedder.encoder import Encoder; e = Encoder.from_settings(S()); "
                                 "print(e.backend_name, e.dimension)"], capture_output=True, text=True)
        check(loaded.returncode == 0, f"the embedder image cannot load its model offline: {loaded.stderr[-2000:]}")
        print(f"    embedder image, no network: backend and dimension {loaded.stdout.split()}")

    with step("make up (Docker mode, empty volumes)"):
        up = run(["make", "--no-print-directory", "up"], env)
        first = up.stdout.splitlines()[0]
        check(first.startswith("make up: docker mode"), f"make up's first line: {first}")
        check(stack.api in up.stdout, "make up prints the api's URL")
        stack.load_keys()
        check(f"read key  {stack.keys['read']}" in up.stdout and f"write key {stack.keys['write']}" in up.stdout,
              "make up prints the demo keys it saved")
    with step("every service healthy"):
        rows = {row["Service"]: row for row in containers(env)}
        for name in ("postgres", "rabbitmq", "ingest", "api", "trainer", "embedder"):
            check(rows.get(name, {}).get("Health") == "healthy", f"{name}: {rows.get(name)}")
        check(rows["migrate"]["State"] == "exited" and rows["migrate"]["ExitCode"] == 0, f"migrate: {rows['migrate']}")
        for url in (stack.api, stack.ingest):
            status, body = http("GET", f"{url}/health/ready")
            check(status == 200, f"{url}/health/ready: {status} {body}")
        check(len(stack.consumers()) == 2, "two embedder workers consume the queue")
    with step("the demo loaded"):
        ids = [movie["id"] for movie in demo["movies"]]
        check(stack.embedded(ids) == len(ids), "every demo film is embedded")
    with step("a posted product is embedded"):
        posted = stack.post_products(1, "single")
        stack.wait_embedded(posted, timeout_s=120)
    with step("a user's recommendations"):
        status, body = http("GET", f"{stack.api}/v1/users/{user['id']}/recommendations?limit=5")
        check(status == 401, f"without a key: {status} {body}")
        status, body = http("GET", f"{stack.api}/v1/users/{user['id']}/recommendations?limit=5",
                            key=stack.keys["read"])
        check(status == 200 and len(body["items"]) == 5, f"recommendations: {status} {body}")
        seen = set(user["likes"]) | set(user["dislikes"])
        check(not seen & {item["product"]["id"] for item in body["items"]}, "nothing the user already rated")

    with step("scale to three embedder workers, each consuming"):
        compose(env, "up", "-d", "--scale", "embedder=3", "--wait")
        wait_for("three consumers on the queue", lambda: len(stack.consumers()) == 3, 60)
        before = stack.delivered_per_consumer()
        batch = stack.post_products(90, "scaled")
        stack.wait_embedded(batch)
        # The broker's statistics lag up to 5 s behind the deliveries.
        counts = wait_for("deliveries to every worker", lambda: (
            (after := stack.delivered_per_consumer()) and len(after) == 3 and
            all(a > b for a, b in zip(after, before + [0] * 3)) and after), 30)
        print(f"    messages delivered per worker: {counts}")

    with step("a killed embedder is restarted and nothing accepted is lost"):
        victim = containers(env, "embedder")[0]["Name"]
        restarts = int(inspect(victim, ".RestartCount"))
        batch = stack.post_products(150, "killed")
        wait_for("the workers busy with the batch", lambda: 0 < stack.embedded(batch[::15]) < 10, 60, 0.2)
        crash(victim)
        wait_for(f"{victim} restarted by its restart policy", lambda: int(inspect(victim, ".RestartCount")) > restarts, 60)
        stack.wait_embedded(batch)
        wait_for("three consumers again", lambda: len(stack.consumers()) == 3, 120)

    with step("make down leaves no container running"):
        run(["make", "--no-print-directory", "down"], env)
        running = [row["Name"] for row in containers(env) if row["State"] == "running"]
        check(not running, f"still running: {running}")
    with step("make up again finds the data"):
        up = run(["make", "--no-print-directory", "up"], env)
        check("demo loaded" not in up.stdout + up.stderr, "the demo was loaded again")
        keys = dict(stack.keys)
        stack.load_keys()
        check(stack.keys == keys, "the demo keys stay the same")
        check(stack.embedded(posted + batch[:20]) == 21, "products posted before make down are still there")


def main() -> int:
    env = stack_env()
    print(f"compose project {PROJECT}: api {env['API_PORT']}, ingest {env['INGEST_PORT']},"
          f" RabbitMQ management {env['RABBITMQ_UI_PORT']} on 127.0.0.1", flush=True)
    failed = None
    started: list = []
    try:
        checks(env, started)
    except (CheckFailed, subprocess.CalledProcessError, SystemExit) as error:
        failed = error
    finally:
        if os.environ.get("KEEP_STACK") != "1":
            shutil.rmtree(env["RUN_DIR"], ignore_errors=True)
        if os.environ.get("KEEP_STACK") != "1" and dockerhost.answers("docker", "info"):
            subprocess.run(["docker", "compose", "down", "--volumes", "--remove-orphans"], cwd=ROOT, env=env,
                           capture_output=True)
            if started and started[0] is not None:
                print("stopping the dockerd this run started (the images stay)", flush=True)
                dockerhost.stop_engine(started[0])
    print("\nstep times:")
    for name, seconds in TIMES:
        print(f"  {seconds:7.1f} s  {name}")
    print(f"  {sum(s for _, s in TIMES):7.1f} s  in all")
    if failed is not None:
        print(f"\nFAILED: {failed}", file=sys.stderr)
        return 1
    print("\nmake test-docker: every check passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
