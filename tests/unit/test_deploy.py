"""The compose file and the Kubernetes manifests, validated offline against their schemas."""
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from shared.amqp import Topology
from shared.settings import ApiSettings, EmbedderSettings, IngestSettings, Settings, TrainerSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def _by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in _manifests() if doc["kind"] == kind}


def test_compose_file_matches_the_compose_specification():
    result = subprocess.run([BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec",
                             ROOT / "docker-compose.yml"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_embedder_scales_and_everything_waits_for_what_it_needs():
    services = _compose()["services"]
    assert {"postgres", "rabbitmq", "migrate", "ingest", "embedder", "api", "trainer"} <= services.keys()
    embedder = services["embedder"]
    assert "container_name" not in embedder and "ports" not in embedder, "fixed names or ports block --scale"
    assert "pgvector/pgvector" in services["postgres"]["image"]
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in services["postgres"]["volumes"])
    for name in ("postgres", "rabbitmq", "ingest", "embedder", "api", "trainer"):
        assert "test" in services[name].get("healthcheck", {}), f"{name} has no healthcheck"
    for name in ("migrate", "trainer"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("ingest", "embedder", "api", "trainer"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("ingest", "embedder"):
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["api", "ingest", "embedder"])
def test_each_image_runs_as_non_root_with_a_healthcheck_and_deps_before_source(service: str):
    lines = (ROOT / "services" / service / "Dockerfile").read_text().splitlines()
    instructions = [line.split()[0] for line in lines if line and not line.startswith((" ", "#"))]
    assert "USER" in instructions and "HEALTHCHECK" in instructions
    first_source_copy = next(i for i, line in enumerate(lines) if line.startswith("COPY shared"))
    install = next(i for i, line in enumerate(lines) if "pip install -r requirements.txt" in line)
    assert install < first_source_copy
    code = "\n".join(line for line in lines if not line.startswith("#"))
    heavy = "torch" in code or "optional-dependencies" in code
    assert heavy == (service == "embedder"), "only the embedder image carries torch and the model"


def _copies(dockerfile: str, module: str) -> bool:
    """Whether the image built from `dockerfile` holds the source of `python -m module`."""
    package = module.replace(".", "/")
    copied = [line.split()[1] for line in (ROOT / dockerfile).read_text().splitlines() if line.startswith("COPY ")]
    return any(package == source.rstrip("/") or package.startswith(source.rstrip("/") + "/") for source in copied)


def test_every_container_command_runs_code_its_image_holds():
    commands = []
    for name, service in _compose()["services"].items():
        if "build" in service and "command" in service:
            commands.append((f"compose {name}", service["build"]["dockerfile"], service["command"]))
    for doc in _manifests():
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            if "command" in container and container["image"].startswith("recommender-"):
                role = container["image"].removeprefix("recommender-")
                commands.append((f"{doc['kind']} {doc['metadata']['name']}", f"services/{role}/Dockerfile",
                                 container["command"]))
    assert any("services.trainer" in command for _, _, command in commands)
    for where, dockerfile, command in commands:
        assert command[:2] == ["python", "-m"], where
        assert _copies(dockerfile, command[2]), f"{where} runs {command[2]}, which {dockerfile} does not copy"


def test_every_builtin_manifest_validates_against_the_kubernetes_schema():
    checked = 0
    for doc in _manifests():
        if doc["apiVersion"].startswith(("keda.sh/", "kustomize.config.k8s.io/")):
            continue
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
        checked += 1
    assert checked >= 10


def test_keda_scales_the_embedder_on_the_work_queue():
    [scaled] = _by_kind("ScaledObject").values()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] in _by_kind("Deployment")
    assert "embedder" in scaled["spec"]["scaleTargetRef"]["name"]
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == Topology(Settings().amqp_prefix).queue
    assert trigger["metadata"]["mode"] in ("QueueLength", "MessageRate") and int(trigger["metadata"]["value"]) > 0
    assert trigger["authenticationRef"]["name"] in _by_kind("TriggerAuthentication")


def test_deployments_probe_health_and_the_embedder_outlasts_its_shutdown():
    deployments = _by_kind("Deployment")
    assert {"recommender-api", "recommender-ingest", "recommender-embedder", "recommender-trainer"} == deployments.keys()
    for deployment in deployments.values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert {"configMapRef": {"name": "recommender-config"}} in container["envFrom"]
        assert any("secretKeyRef" in env.get("valueFrom", {}) for env in container["env"])
    defaults = EmbedderSettings()
    worst_backoff_s = defaults.retry_base_s * (2 ** (defaults.max_attempts - 1) - 1)
    grace_s = deployments["recommender-embedder"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace_s > worst_backoff_s + 30, "leave the worker time to finish its batch and its retries"
    assert "recommender-api" in {hpa["spec"]["scaleTargetRef"]["name"]
                                 for hpa in _by_kind("HorizontalPodAutoscaler").values()}
    assert "recommender-migrate" in _by_kind("Job")
    trainer = deployments["recommender-trainer"]["spec"]
    assert trainer["replicas"] == 1 and trainer["strategy"]["type"] == "Recreate", "one trainer at a time"


def test_env_example_documents_every_setting():
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    keys = {name.upper() for cls in (Settings, IngestSettings, ApiSettings, EmbedderSettings, TrainerSettings)
            for name in cls.model_fields}
    assert keys - documented == set()


def test_every_upstream_image_has_an_offline_stand_in():
    from tools import dockerhost

    images = dockerhost.upstream_images()
    assert "python:3.11-slim-bookworm" in images and len(images) == 3
    assert {image.split(":")[0] for image in images} == dockerhost.RECIPE_OF.keys()


@pytest.mark.parametrize(("docker_exit", "given", "says"), [
    (0, None, "make ps: docker mode: a Docker engine answers docker info"),
    (1, None, "make ps: native mode: no Docker engine answers docker info"),
    (0, "native", "make ps: native mode: STACK_MODE=native was given"),
])
def test_make_says_which_mode_it_chose_and_why(tmp_path: Path, docker_exit: int, given: str | None, says: str):
    fake = tmp_path / "docker"
    fake.write_text(f"#!/bin/sh\nexit {docker_exit}\n")
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", **({"STACK_MODE": given} if given else {})}
    result = subprocess.run(["make", "-n", "--no-print-directory", "ps"], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(f'echo "{says}')


def test_make_refuses_an_unknown_stack_mode():
    result = subprocess.run(["make", "-n", "ps"], cwd=ROOT, env={"PATH": "/usr/bin:/bin", "STACK_MODE": "k8s"},
                            capture_output=True, text=True)
    assert result.returncode != 0 and 'STACK_MODE is "k8s": use docker or native' in result.stderr
