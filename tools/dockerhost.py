"""This machine's Docker: `python -m tools.dockerhost engine|images [--missing-only]`.

`engine` makes sure a Docker engine answers and `docker compose` is Compose v2: it starts an
installed but stopped `dockerd`, installs Debian's `docker.io` with apt-get when it is missing
(as root), and takes the Compose v2 plugin from Debian 13's `docker-compose` package when the
CLI has none. Otherwise it stops with one line saying what is missing.

`images` (`make images-offline`) builds local stand-ins for the upstream images that
docker-compose.yml and the Dockerfiles name (Python slim, pgvector/pgvector, RabbitMQ with its
management plugin), for machines that cannot reach Docker Hub: a Debian root filesystem from
`debootstrap`, imported as a base, then the recipes in deploy/offline/, tagged with the upstream
names. Each tag's version is checked against what the Debian packages provide. `--missing-only`
leaves images that are present (or can be pulled) alone.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "deploy" / "offline"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE = "recommender-offline/debian:{suite}"
STANDIN_LABEL = "org.recommender.offline-stand-in"
PYTHON_SUITES = {"3.11": "bookworm", "3.13": "trixie"}  # the Python of each Debian release
PLUGIN_DIR = Path("/usr/local/lib/docker/cli-plugins")
DOCKERD_LOG = Path("/var/log/dockerd.log")


class Missing(SystemExit):
    """Stop with one line saying what is missing."""


def sh(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, **kwargs)


def answers(*args: str) -> bool:
    return subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Missing(f"missing: {' '.join(packages)} (install with apt-get as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", *packages]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise Missing(f"apt-get could not install {' '.join(packages)}: {result.stderr.strip()[-300:]}")


# --- the engine -------------------------------------------------------------------------------

def ensure_engine(timeout_s: float = 60) -> subprocess.Popen | None:
    """Make sure a Docker engine answers; return the `dockerd` started here, if one was."""
    if answers("docker", "info"):
        return None
    if not shutil.which("dockerd"):
        print("dockerd is not installed: installing Debian's docker.io", flush=True)
        apt_install("docker.io")
    if answers("docker", "info"):
        return None
    if os.geteuid() != 0:
        raise Missing("no Docker engine answers and dockerd needs root to start: start it (sudo dockerd &)")
    # On the socket DOCKER_HOST names, where it names one: the CLI and compose look there.
    host = os.environ.get("DOCKER_HOST", "")
    listen = ["-H", host] if host.startswith("unix://") else []
    print(f"starting dockerd {' '.join(listen)} (log: {DOCKERD_LOG})", flush=True)
    with DOCKERD_LOG.open("ab") as log:
        dockerd = subprocess.Popen(["dockerd", *listen], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while not answers("docker", "info"):
        if dockerd.poll() is not None or time.monotonic() > deadline:
            raise Missing(f"dockerd did not start: {_last_line(DOCKERD_LOG)} (log: {DOCKERD_LOG})")
        time.sleep(0.5)
    return dockerd


def stop_engine(dockerd: subprocess.Popen, timeout_s: float = 60) -> None:
    """Stop a `dockerd` that ensure_engine started (its containers stop with it)."""
    dockerd.terminate()
    try:
        dockerd.wait(timeout_s)
    except subprocess.TimeoutExpired:
        dockerd.kill()
        dockerd.wait()


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1] if lines else "no output"


def compose_version() -> str | None:
    result = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True)
    return result.stdout.strip().lstrip("v") if result.returncode == 0 else None


def ensure_compose() -> None:
    """Compose v2 (`docker compose ... --wait`): where the CLI has no plugin, Debian 13's package."""
    if (compose_version() or "1").split(".")[0] == "2":
        return
    print("docker compose v2 is missing: taking it from Debian 13's docker-compose package", flush=True)
    ensure_base("trixie")
    with tempfile.TemporaryDirectory() as out:
        sh("docker", "run", "--rm", "-e", "DEBIAN_FRONTEND=noninteractive", "-v", f"{out}:/out", BASE.format(suite="trixie"), "sh", "-c",
           "apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends docker-compose >/dev/null"
           " && cp /usr/libexec/docker/cli-plugins/docker-compose /out/")
        PLUGIN_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(out) / "docker-compose", PLUGIN_DIR / "docker-compose")
    if (compose_version() or "1").split(".")[0] != "2":
        raise Missing(f"docker compose v2 did not work from {PLUGIN_DIR}/docker-compose")


# --- the offline stand-ins --------------------------------------------------------------------

def image_exists(name: str) -> bool:
    return answers("docker", "image", "inspect", name)


def import_rootfs(root: Path, name: str) -> None:
    """Import a debootstrapped tree as image `name`, set up as Debian's own container images are:
    no services started by packages, no recommends, no docs or manuals, no package caches."""
    (root / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
    (root / "usr/sbin/policy-rc.d").chmod(0o755)
    (root / "etc/dpkg/dpkg.cfg.d/excludes").write_text(
        "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
        "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n")
    (root / "etc/apt/apt.conf.d/docker-clean").write_text(
        'APT::Install-Recommends "false";\nDPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n')
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (root / cache).glob("*"):
            if item.is_file():
                item.unlink()
    for folder in ("usr/share/man", "usr/share/info", "usr/share/locale"):
        shutil.rmtree(root / folder, ignore_errors=True)
    for doc in (root / "usr/share/doc").glob("*/*"):
        if doc.name != "copyright":
            shutil.rmtree(doc) if doc.is_dir() and not doc.is_symlink() else doc.unlink()
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    sh("docker", "import", "--change", 'CMD ["bash"]', "-", name, stdin=tar.stdout, stdout=subprocess.DEVNULL)
    if tar.wait() != 0:
        raise Missing(f"could not pack the root filesystem {root}")


def ensure_base(suite: str) -> str:
    """A minimal Debian `suite` imported from debootstrap, with the usual container settings."""
    name = BASE.format(suite=suite)
    if image_exists(name):
        return name
    if not shutil.which("debootstrap"):
        apt_install("debootstrap")
    print(f"debootstrap {suite} from {MIRROR} (about a minute)", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"debootstrap-{suite}-", dir="/var/tmp") as root:
        sh("debootstrap", "--variant=minbase", suite, root, MIRROR, stdout=subprocess.DEVNULL)
        import_rootfs(Path(root), name)
    return name


def upstream_images() -> list[str]:
    """The images docker-compose.yml and the services' Dockerfiles name, in order, once each."""
    names = re.findall(r"^\s*image:\s*[\"']?([^\s\"']+)", (ROOT / "docker-compose.yml").read_text(), re.M)
    for dockerfile in sorted(ROOT.glob("services/*/Dockerfile")):
        names += [name for name in re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
                  if "$" not in name and ":" in name]
    return list(dict.fromkeys(names))


def pip_setting(name: str) -> str | None:
    """A setting of this machine's pip (PIP_<NAME> or `pip config`), as pip itself would read it."""
    if os.environ.get(f"PIP_{name.upper().replace('-', '_')}"):
        return os.environ[f"PIP_{name.upper().replace('-', '_')}"]
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    found = re.search(rf"^\S*\.{name}='([^']+)'", listing, re.M)
    return found.group(1) if found else None


def pip_cert() -> Path | None:
    """The certificate bundle this machine's pip trusts, if one is set."""
    cert = pip_setting("cert")
    return Path(cert) if cert else None


def stage_wheels(python_tag: str) -> None:
    """Put the CPU torch wheel this machine's pip finds (its find-links) into build/wheels/, where the
    embedder's build stage takes it instead of PyTorch's CPU index."""
    pinned = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    if not pinned:
        return
    folders = [Path(item) for item in (pip_setting("find-links") or "").split() if "://" not in item]
    wheels = [wheel for folder in folders for wheel in folder.glob(f"torch-{pinned.group(1)}+cpu-{python_tag}-*.whl")]
    staged = ROOT / "build" / "wheels"
    staged.mkdir(parents=True, exist_ok=True)
    for old in staged.glob("torch-*.whl"):
        if old.name not in {wheel.name for wheel in wheels}:
            old.unlink()
    for wheel in wheels:
        if not (staged / wheel.name).exists() or (staged / wheel.name).stat().st_size != wheel.stat().st_size:
            shutil.copy2(wheel, staged / wheel.name)
        print(f"the embedder build takes torch from build/wheels/{wheel.name}", flush=True)


def _context(recipe: str, extra: dict[str, bytes] | None = None) -> tempfile.TemporaryDirectory:
    context = tempfile.TemporaryDirectory(prefix="standin-")
    for path in RECIPES.glob("*"):
        shutil.copy2(path, context.name)
    for name, data in (extra or {}).items():
        Path(context.name, name).write_bytes(data)
    return context


def _build(tag: str, recipe: str, args: dict[str, str], extra: dict[str, bytes] | None = None) -> None:
    print(f"building the stand-in {tag} ({recipe})", flush=True)
    with _context(recipe, extra) as context:
        build_args = [item for key, value in args.items() for item in ("--build-arg", f"{key}={value}")]
        result = subprocess.run(["docker", "build", "-t", tag, "-f", str(Path(context, recipe)), "--label",
                                 f"{STANDIN_LABEL}=true", *build_args, context], capture_output=True, text=True)
        if result.returncode != 0:  # the build's own words, only when it failed
            print(result.stdout[-4000:], result.stderr[-4000:], sep="\n", file=sys.stderr)
            raise Missing(f"the stand-in {tag} did not build ({recipe})")


def _in_image(tag: str, command: str) -> str:
    result = subprocess.run(["docker", "run", "--rm", "--entrypoint", "sh", tag, "-c", command],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def _check_version(tag: str, wanted: str, actual: str, what: str) -> None:
    if wanted and not (actual == wanted or actual.startswith(wanted + ".") or actual.startswith(wanted + "-")):
        raise Missing(f"{tag}: the tag asks for {what} {wanted}, the Debian packages give {actual}")


def build_python(tag: str) -> None:
    version = re.match(r"python:(\d+\.\d+)", tag)
    suite = PYTHON_SUITES.get(version.group(1)) if version else None
    if not suite:
        raise Missing(f"{tag}: no Debian release packages that Python ({', '.join(PYTHON_SUITES)} are known)")
    cert = pip_cert()
    extra = {"ca-bundle.crt": cert.read_bytes() if cert else b"",
             "pip.conf": b"[global]\n" + (b"cert = /etc/pip/ca-bundle.crt\n" if cert else b"")}
    _build(tag, "python.Dockerfile", {"BASE": ensure_base(suite)}, extra)
    _check_version(tag, version.group(1), _in_image(tag, "python -c 'import platform; print(platform.python_version())'"),
                   "Python")


def build_pgvector(tag: str) -> None:
    found = re.match(r"pgvector/pgvector:(?:(\d[\d.]*)-)?pg(\d+)", tag)
    if not found:
        raise Missing(f"{tag}: expected a tag like pgvector/pgvector:0.8.0-pg17")
    _build(tag, "pgvector.Dockerfile", {"BASE": ensure_base("trixie"), "PG_MAJOR": found.group(2)})
    _check_version(tag, found.group(1) or "", _in_image(
        tag, f"dpkg-query -W -f '${{Version}}' postgresql-{found.group(2)}-pgvector"), "pgvector")


def build_rabbitmq(tag: str) -> None:
    found = re.match(r"rabbitmq:(?:(\d[\d.]*)-?)?(management)?", tag)
    if not found or not found.group(2):
        raise Missing(f"{tag}: expected a tag like rabbitmq:4.0-management")
    _build(tag, "rabbitmq.Dockerfile", {"BASE": ensure_base("trixie")})
    _check_version(tag, found.group(1) or "", _in_image(tag, "dpkg-query -W -f '${Version}' rabbitmq-server"),
                   "RabbitMQ")


RECIPE_OF = {"python": build_python, "pgvector/pgvector": build_pgvector, "rabbitmq": build_rabbitmq}


def build_standins(missing_only: bool) -> None:
    wanted = []
    for tag in upstream_images():
        repository = tag.split(":")[0]
        if repository not in RECIPE_OF:
            raise Missing(f"{tag}: no offline recipe for this image in {RECIPES.relative_to(ROOT)}")
        if not (missing_only and (image_exists(tag) or answers("docker", "pull", "-q", tag))):
            wanted.append(tag)
    suites = {PYTHON_SUITES.get(tag.split(":")[1][:4], "bookworm") if tag.startswith("python:") else "trixie"
              for tag in wanted}
    with ThreadPoolExecutor() as pool:  # the root file systems download at once
        list(pool.map(ensure_base, sorted(suites)))
    for tag in wanted:
        repository = tag.split(":")[0]
        started = time.monotonic()
        RECIPE_OF[repository](tag)
        size_mb = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True,
                                     text=True, check=True).stdout) / 1e6
        print(f"{tag}: stand-in built in {time.monotonic() - started:.0f} s, {size_mb:.0f} MB", flush=True)
    for tag in upstream_images():  # built now or before: the embedder's build stage takes torch from here
        if version := re.match(r"python:(\d+)\.(\d+)", tag):
            stage_wheels(f"cp{version.group(1)}{version.group(2)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["engine", "images"])
    parser.add_argument("--missing-only", action="store_true", help="keep images that are present or pullable")
    args = parser.parse_args(argv)
    try:
        ensure_engine()  # left running: `make up` in Docker mode comes next
        ensure_compose()
        if args.command == "images":
            build_standins(args.missing_only)
    except subprocess.CalledProcessError as error:
        print(f"failed: {' '.join(map(str, error.cmd))} (exit {error.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
