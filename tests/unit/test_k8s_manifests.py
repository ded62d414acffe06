"""The Kubernetes manifests in deploy/k8s: valid for their kinds, and agreeing with the code.

Built-in kinds are checked (strictly: no unknown field) against the Kubernetes OpenAPI schemas
that kubernetes-validate ships, so the check runs offline; KEDA's kinds against the part of
KEDA's CRD schema balsong uses (`KEDA_SCHEMAS`).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from actors.broker import SEND_QUEUES, TRANSACTIONAL_QUEUES
from engine.config import DEVELOPMENT_SECRETS, Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
#: The oldest Kubernetes minor version the manifests must be valid for.
KUBERNETES_VERSION = "1.29"
SETTINGS_ENV = {"BALSONG_" + f.name.upper() for f in fields(Settings)}

_TRIGGER = {
    "type": "object",
    "required": ["type", "metadata"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "rabbitmq"},
        "metadata": {
            "type": "object",
            "required": ["queueName", "mode", "value"],
            "additionalProperties": False,
            "properties": {
                "protocol": {"enum": ["amqp", "http", "auto"]},
                "mode": {"enum": ["QueueLength", "MessageRate"]},
                "value": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"},
                "queueName": {"type": "string", "minLength": 1},
                "vhostName": {"type": "string"},
            },
        },
        "authenticationRef": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
        },
    },
}
_METADATA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}

#: KEDA v2 (keda.sh/v1alpha1) ScaledObject and TriggerAuthentication, the fields balsong uses.
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}},
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["secretTargetRef"],
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {k: {"type": "string"} for k in ("parameter", "name", "key")},
                        },
                    }
                },
            },
        },
    },
}


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_for_its_kind(doc: dict[str, Any]) -> None:
    # Given one manifest; Then it validates against its kind's schema, with no unknown field
    if doc["apiVersion"].startswith("keda.sh/"):
        jsonschema.validate(doc, KEDA_SCHEMAS[doc["kind"]])
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    # Given a Deployment with a typo in a probe; Then the strict check refuses it
    api = by_kind("Deployment")["balsong-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    broken = {
        **api,
        "spec": {
            **api["spec"],
            "template": {
                **api["spec"]["template"],
                "spec": {
                    **api["spec"]["template"]["spec"],
                    "containers": [{**container, "readinesProbe": {}}],
                },
            },
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_process_runs_replicated_with_resources() -> None:
    deployments = by_kind("Deployment")
    assert set(deployments) == {"balsong-api", "balsong-worker", "balsong-scheduler", "balsong-callbacks"}
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] >= 2, name
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert container["args"][0] == name.removeprefix("balsong-"), name


def test_the_api_is_probed_on_its_health_route(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.app import create_app

    monkeypatch.setenv("BALSONG_ENV", "development")  # the app refuses to exist without secrets
    get_settings.cache_clear()
    try:
        app = create_app()
    finally:
        get_settings.cache_clear()
    routes = {getattr(route, "path", None) for route in app.routes}
    container = by_kind("Deployment")["balsong-api"]["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in routes


def test_every_setting_the_manifests_pass_is_one_balsong_reads() -> None:
    names = set(by_kind("ConfigMap")["balsong-config"]["data"])
    for deployment in by_kind("Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names |= {env["name"] for env in container.get("env", [])}
    assert names <= SETTINGS_ENV, names - SETTINGS_ENV


def test_production_takes_every_secret_from_the_secret() -> None:
    """Given the ConfigMap and the api, worker, scheduler and callbacks Deployments
    When their settings are read
    Then they run with BALSONG_ENV=production, every process reads the Secret balsong-secrets,
    no secret has a value in a manifest, and config.yaml names every secret the Secret must hold
    (the processes refuse to start without them)."""
    config = by_kind("ConfigMap")["balsong-config"]["data"]
    assert config["BALSONG_ENV"] == "production"
    secrets = {"BALSONG_" + name.upper() for name in DEVELOPMENT_SECRETS}
    assert not secrets & set(config)
    for name, deployment in by_kind("Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            sources = [source.get("secretRef", {}).get("name") for source in container["envFrom"]]
            assert "balsong-secrets" in sources, name
            assert not secrets & {env["name"] for env in container.get("env", []) if "value" in env}, name
    listed = (K8S / "config.yaml").read_text(encoding="utf-8")
    assert all(secret in listed for secret in secrets)


def test_scheduler_and_callbacks_are_probed_on_their_metrics_port() -> None:
    """Given the scheduler and callbacks Deployments
    When their containers' ports and probes are read
    Then each exposes the metrics port Settings gives it, named metrics, and both probes use it."""
    defaults = Settings()
    for name, port in (
        ("scheduler", defaults.scheduler_metrics_port),
        ("callbacks", defaults.callbacks_metrics_port),
    ):
        (container,) = by_kind("Deployment")[f"balsong-{name}"]["spec"]["template"]["spec"]["containers"]
        assert {"name": "metrics", "containerPort": port} in container["ports"], name
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["tcpSocket"]["port"] == "metrics", (name, probe)


def test_workers_scale_on_the_depth_of_every_send_queue() -> None:
    (scaled,) = by_kind("ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "balsong-worker"
    queues = {t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]}
    assert queues == {*SEND_QUEUES.values(), *TRANSACTIONAL_QUEUES.values()}
    assert scaled["spec"]["minReplicaCount"] >= 1
