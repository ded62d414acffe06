"""The Kubernetes manifests in deploy/k8s: valid for their kinds, and agreeing with the code.

Built-in kinds are checked (strictly: no unknown field) against the Kubernetes OpenAPI schemas
that kubernetes-validate ships, so the check runs offline; custom resources (KEDA's, the
Prometheus Operator's PodMonitor) against the part of their CRD schema balsong uses
(`CUSTOM_SCHEMAS`).
"""

from __future__ import annotations

import functools
import ipaddress
import re
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
#: API versions of built-in kinds (checked against Kubernetes' schemas); anything else is a custom
#: resource, checked against `CUSTOM_SCHEMAS`.
BUILT_IN_GROUPS = ("v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1")

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
    if not doc["apiVersion"].startswith(BUILT_IN_GROUPS):
        jsonschema.validate(doc, CUSTOM_SCHEMAS[doc["kind"]])
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


def all_containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]


def test_every_setting_the_manifests_pass_is_one_balsong_reads() -> None:
    names = set(by_kind("ConfigMap")["balsong-config"]["data"])
    for template in pod_templates().values():
        for container in all_containers(template):
            names |= {env["name"] for env in container.get("env", [])}
    assert names <= SETTINGS_ENV, names - SETTINGS_ENV


def test_production_takes_every_secret_from_the_secret() -> None:
    """Given the ConfigMap, the api, worker, scheduler and callbacks Deployments and the migration Job
    When their settings are read
    Then they run with BALSONG_ENV=production, every process reads the Secret balsong-secrets,
    no secret has a value in a manifest, and config.yaml names every secret the Secret must hold
    (the processes refuse to start without them)."""
    config = by_kind("ConfigMap")["balsong-config"]["data"]
    assert config["BALSONG_ENV"] == "production"
    secrets = {"BALSONG_" + name.upper() for name in DEVELOPMENT_SECRETS}
    assert not secrets & set(config)
    for name, template in pod_templates().items():
        for container in template["spec"]["containers"]:
            sources = [source.get("secretRef", {}).get("name") for source in container["envFrom"]]
            assert "balsong-secrets" in sources, name
        for container in all_containers(template):
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


# -- Prometheus Operator: PodMonitors ---------------------------------------------------------------

_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_DURATION = {"type": "string", "pattern": "^(0|([0-9]+(ms|s|m|h))+)$"}

#: monitoring.coreos.com/v1 PodMonitor (Prometheus Operator), the fields balsong uses.
POD_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": _LABEL_SELECTOR,
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "relabelings": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "sourceLabels": {"type": "array", "items": {"type": "string"}},
                                        "targetLabel": {"type": "string"},
                                        "replacement": {"type": "string"},
                                        "regex": {"type": "string"},
                                        "action": {"enum": ["replace", "keep", "drop", "labelmap"]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
#: Every custom resource kind the manifests use, with its schema.
CUSTOM_SCHEMAS = {**KEDA_SCHEMAS, "PodMonitor": POD_MONITOR_SCHEMA}


def pod_templates() -> dict[str, dict[str, Any]]:
    """Every pod balsong runs: the Deployments' and the migration Job's templates, by component."""
    templates = {}
    for kind in ("Deployment", "Job"):
        for doc in by_kind(kind).values():
            template = doc["spec"]["template"]
            templates[template["metadata"]["labels"]["app.kubernetes.io/component"]] = template
    return templates


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector matches ``labels`` (an empty selector matches all)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def test_the_selector_matcher_follows_kubernetes_rules() -> None:
    # Given selectors; Then they match as the API server would (the policy tests below rely on it)
    labels = {"app.kubernetes.io/name": "balsong", "app.kubernetes.io/component": "worker"}
    assert selects({}, labels)
    assert selects({"matchLabels": {"app.kubernetes.io/name": "balsong"}}, labels)
    assert not selects({"matchLabels": {"app.kubernetes.io/name": "other"}}, labels)
    in_api = {"key": "app.kubernetes.io/component", "operator": "In", "values": ["api"]}
    assert not selects({"matchExpressions": [in_api]}, labels)
    assert selects({"matchExpressions": [{**in_api, "operator": "NotIn"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)


def test_prometheus_finds_every_process_metrics_endpoint_under_its_compose_job_name() -> None:
    """Given the PodMonitors and the Deployments
    When each Deployment's pods are matched with the PodMonitors
    Then the api's port http (/metrics) and the worker's, scheduler's and callback dispatcher's
    port metrics (9191, 9192, 9193) are scraped every 15 s (the alerts' timing assumes it), under
    the job name prometheus.yml gives them in compose (the alerts select on it)."""
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    compose_jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
    defaults = Settings()
    expected_ports = {
        "api": 8000,
        "worker": defaults.worker_metrics_port,
        "scheduler": defaults.scheduler_metrics_port,
        "callbacks": defaults.callbacks_metrics_port,
    }
    monitors = by_kind("PodMonitor").values()

    for name, deployment in by_kind("Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        component = labels["app.kubernetes.io/component"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        endpoints = [
            endpoint
            for monitor in monitors
            if selects(monitor["spec"]["selector"], labels)
            for endpoint in monitor["spec"]["podMetricsEndpoints"]
        ]
        assert len(endpoints) == 1, (name, endpoints)
        (endpoint,) = endpoints
        assert ports[endpoint["port"]] == expected_ports[component], name
        assert endpoint.get("path", "/metrics") == "/metrics", name
        assert endpoint["interval"] == prometheus["global"]["scrape_interval"] == "15s", name
        (relabel,) = [r for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
        # Prometheus's pod meta labels: __meta_kubernetes_pod_label_<label, sanitised>.
        meta = {
            "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in labels.items()
        }
        value = ";".join(meta[source] for source in relabel.get("sourceLabels", []))
        job = relabel["replacement"].replace("$1", value)
        assert job == name and job in compose_jobs, (name, job)


# -- pod security -------------------------------------------------------------------------------------


def dockerfile_uid() -> int:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    match = re.search(r"useradd [^\n]*--uid (\d+)", text)
    assert match, "the Dockerfile creates no user with a fixed uid"
    return int(match.group(1))


def test_every_pod_runs_unprivileged_as_the_image_user_on_a_read_only_root() -> None:
    """Given every pod balsong runs (the Deployments' and the migration Job's)
    When their security settings are read
    Then each runs as non-root with the Dockerfile's fixed uid and gid, under the runtime's seccomp
    profile, without the service account token, and every container (init ones too) forbids
    privilege escalation, drops every capability and has a read-only root filesystem."""
    uid = dockerfile_uid()
    templates = pod_templates()
    assert set(templates) == {"api", "worker", "scheduler", "callbacks", "migrate"}

    for name, template in templates.items():
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == uid != 0, name
        assert pod["securityContext"]["runAsGroup"] == uid, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in all_containers(template):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (name, container["name"])
            assert context.get("runAsUser", uid) == uid and not context.get("privileged"), name


def test_what_balsong_writes_is_on_empty_dirs() -> None:
    """Given the read-only root filesystems
    When each process's mounts are read
    Then /tmp (exports being built, Dramatiq's lock file) is an emptyDir in every pod, and the
    long-running processes mount a memory emptyDir at BALSONG_METRICS_DIR (prometheus_client's
    multiprocess files), which the ConfigMap moves out of /tmp."""
    metrics_dir = by_kind("ConfigMap")["balsong-config"]["data"]["BALSONG_METRICS_DIR"]
    assert metrics_dir != Settings().metrics_dir and not metrics_dir.startswith("/tmp/")

    for name, template in pod_templates().items():
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        (container,) = template["spec"]["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name
        assert volumes[mounts["/tmp"]]["emptyDir"]["sizeLimit"], name
        if name != "migrate":
            assert volumes[mounts[metrics_dir]]["emptyDir"]["medium"] == "Memory", name
        for c in all_containers(template):
            assert {m["name"] for m in c.get("volumeMounts", [])} <= set(volumes), (name, c["name"])


# -- migrations before the rollout ---------------------------------------------------------------------


def test_a_job_migrates_the_primary_and_every_deployment_waits_for_its_schema() -> None:
    """Given the migration Job and the Deployments
    When they are read
    Then the Job runs `balsong db upgrade` once (one pod, never restarted in place, retried a few
    times) on the primary directly, every Deployment's pods first run wait-for-schema from the
    ConfigMap balsong-schema-wait, and Argo CD's sync waves put the ConfigMaps, then the Job,
    before the Deployments."""
    (job,) = by_kind("Job").values()
    spec = job["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}

    assert container["args"] == ["db", "upgrade"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec.get("parallelism", 1) == 1 and spec.get("completions", 1) == 1
    assert 1 <= spec["backoffLimit"] <= 6
    assert env["BALSONG_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "BALSONG_DATABASE_DIRECT_URL"
    assert env["BALSONG_DATABASE_PGBOUNCER"]["value"] == "false"

    def wave(doc: dict[str, Any]) -> int:
        return int(doc["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))

    configmaps = by_kind("ConfigMap")
    assert max(wave(c) for c in configmaps.values()) < wave(job) < 0
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"
    for name, deployment in by_kind("Deployment").items():
        assert wave(deployment) == 0, name
        pod = deployment["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        assert init["name"] == "wait-for-schema", name
        assert init["image"] == pod["containers"][0]["image"], name
        assert init["command"] == ["python", "/etc/balsong/wait_for_schema.py"], name
        (mount,) = init["volumeMounts"]
        volume = {v["name"]: v for v in pod["volumes"]}[mount["name"]]
        assert mount["mountPath"] == "/etc/balsong", name
        assert volume["configMap"]["name"] == "balsong-schema-wait", name
        assert "wait_for_schema.py" in configmaps["balsong-schema-wait"]["data"]


class _Waited(Exception):
    """wait-for-schema went to sleep: it is waiting."""


def run_wait_for_schema(monkeypatch: pytest.MonkeyPatch, revisions: list[str] | None) -> int:
    """Run the ConfigMap's wait_for_schema.py against a database at ``revisions`` (None: not
    reachable); its exit code, or -1 if it went on waiting."""
    import time
    import types

    script = by_kind("ConfigMap")["balsong-schema-wait"]["data"]["wait_for_schema.py"]
    fake = types.ModuleType("psycopg")

    class Error(Exception):
        pass

    class Connection:
        def __enter__(self) -> Connection:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def execute(self, query: str) -> list[tuple[str]]:
            assert query == "SELECT version_num FROM alembic_version"
            return [(r,) for r in revisions or []]

    def connect(url: str, **kwargs: Any) -> Connection:
        assert url == "postgresql://db/balsong"
        if revisions is None:
            raise Error("connection refused")
        return Connection()

    fake.Error = Error  # type: ignore[attr-defined]
    fake.connect = connect  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "psycopg", fake)
    monkeypatch.setenv("BALSONG_DATABASE_URL", "postgresql://db/balsong")

    def sleep(seconds: float) -> None:
        raise _Waited

    monkeypatch.setattr(time, "sleep", sleep)
    try:
        exec(compile(script, "wait_for_schema.py", "exec"), {"__name__": "__main__"})
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except _Waited:
        return -1
    raise AssertionError("wait_for_schema.py neither exited nor waited")


def test_wait_for_schema_lets_a_pod_start_only_on_a_schema_at_or_past_its_head(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given the wait-for-schema script and this code's migrations
    When the database is at their head, at an earlier revision, unreachable, without any
    revision, or at a revision this code does not know (a later release migrated first)
    Then it exits 0 at the head and past it, and waits otherwise."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from engine.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    (head,) = script.get_heads()
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)

    assert run_wait_for_schema(monkeypatch, [head]) == 0
    assert run_wait_for_schema(monkeypatch, ["9999_a_later_release"]) == 0
    assert run_wait_for_schema(monkeypatch, [previous]) == -1
    assert run_wait_for_schema(monkeypatch, []) == -1
    assert run_wait_for_schema(monkeypatch, None) == -1


# -- network policies ---------------------------------------------------------------------------------

#: A pod elsewhere in the cluster: (its namespace's labels, its labels).
Peer = tuple[dict[str, str], dict[str, str]]


def _ns(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}


BALSONG_NAMESPACE = _ns("balsong")
PROMETHEUS: Peer = (_ns("monitoring"), {"app.kubernetes.io/name": "prometheus"})
INGRESS_CONTROLLER: Peer = (_ns("ingress-nginx"), {"app.kubernetes.io/name": "ingress-nginx"})
SOME_APP: Peer = (_ns("shop"), {"app": "shop"})
PROMETHEUS_ELSEWHERE: Peer = (_ns("shop"), {"app.kubernetes.io/name": "prometheus"})
DNS: Peer = (_ns("kube-system"), {"k8s-app": "kube-dns"})
#: What a balsong process may reach: name -> (peer pod or None, IP address or None, port).
DESTINATIONS: dict[str, tuple[Peer | None, str | None, int]] = {
    "postgresql": ((_ns("data"), {"app.kubernetes.io/name": "postgresql"}), None, 5432),
    "pgbouncer": ((_ns("data"), {"app.kubernetes.io/name": "pgbouncer"}), None, 6432),
    "redis": ((_ns("data"), {"app.kubernetes.io/name": "redis"}), None, 6379),
    "rabbitmq": ((_ns("data"), {"app.kubernetes.io/name": "rabbitmq"}), None, 5672),
    "https": (None, "203.0.113.10", 443),
    "https-v6": (None, "2001:db8::10", 443),
    "http": (None, "203.0.113.10", 80),
    "private-https": (None, "10.20.0.7", 443),
    "metadata": (None, "169.254.169.254", 80),
    "metadata-https": (None, "169.254.169.254", 443),
    "postgresql-other-port": ((_ns("data"), {"app.kubernetes.io/name": "postgresql"}), None, 6379),
    "some-app": (SOME_APP, None, 443),
}
#: What each process needs (besides DNS), as names of `DESTINATIONS`.
NEEDS = {
    "api": {"postgresql", "pgbouncer", "redis", "rabbitmq", "https", "https-v6"},
    "worker": {"postgresql", "pgbouncer", "redis", "rabbitmq", "https", "https-v6"},
    "scheduler": {"postgresql", "pgbouncer", "redis", "rabbitmq", "https", "https-v6"},
    "callbacks": {"postgresql", "pgbouncer", "https", "https-v6"},
    "migrate": {"postgresql", "pgbouncer"},
}


def _peer_matches(peer: dict[str, Any], pod: Peer | None, ip: str | None) -> bool:
    if "ipBlock" in peer:
        if ip is None:
            return False
        address = ipaddress.ip_address(ip)
        block = ipaddress.ip_network(peer["ipBlock"]["cidr"])
        excepted = [ipaddress.ip_network(e) for e in peer["ipBlock"].get("except", [])]
        return (
            address.version == block.version
            and address in block
            and not any(address.version == e.version and address in e for e in excepted)
        )
    if pod is None:
        return False
    namespace, labels = pod
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace):
            return False
    elif namespace != BALSONG_NAMESPACE:
        return False
    return selects(peer.get("podSelector", {}), labels)


@functools.cache
def _policy_world() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    return pod_templates(), list(by_kind("NetworkPolicy").values())


def allowed(
    component: str,
    direction: str,
    port: int,
    *,
    pod: Peer | None = None,
    ip: str | None = None,
    protocol: str = "TCP",
) -> bool:
    """Whether the policies let ``component``'s pods receive (Ingress) from, or send (Egress) to,
    ``pod`` or ``ip`` on ``port``: the union of every policy that selects them, if any does."""
    templates, network_policies = _policy_world()
    template = templates[component]
    labels = template["metadata"]["labels"]
    named = {
        p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
    }
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    policies = [
        p["spec"]
        for p in network_policies
        if selects(p["spec"]["podSelector"], labels) and direction in p["spec"]["policyTypes"]
    ]
    if not policies:
        return True
    for spec in policies:
        for rule in spec.get(rules_key, []):
            peers = rule.get(peers_key)
            if peers and not any(_peer_matches(peer, pod, ip) for peer in peers):
                continue
            for rule_port in rule.get("ports") or [{"protocol": protocol}]:
                wanted = rule_port.get("port", port)
                if isinstance(wanted, str):
                    # A named port is the selected pod's for ingress (egress here uses numbers).
                    wanted = named.get(wanted) if direction == "Ingress" else None
                if rule_port.get("protocol", "TCP") == protocol and wanted == port:
                    return True
    return False


def test_every_balsong_pod_is_denied_what_no_policy_allows() -> None:
    """Given the NetworkPolicies
    When the default deny is looked for
    Then one policy without rules selects every balsong pod for ingress and egress, and the
    evaluator used below refuses a pod something no policy allows."""
    defaults = [
        p
        for p in by_kind("NetworkPolicy").values()
        if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]

    assert defaults
    for name, template in pod_templates().items():
        assert any(selects(p["spec"]["podSelector"], template["metadata"]["labels"]) for p in defaults), name
        assert not allowed(name, "Ingress", 22, pod=SOME_APP)
        assert not allowed(name, "Egress", 22, ip="203.0.113.10")


def test_metrics_are_reachable_from_prometheus_only_and_the_api_from_the_ingress_controller() -> None:
    """Given the NetworkPolicies and each process's ports
    When Prometheus (namespace monitoring), the ingress controller, another app, a pod named
    prometheus elsewhere and another balsong pod connect to them
    Then the metrics ports (worker 9191, scheduler 9192, callbacks 9193) take Prometheus only; the
    API's port (its routes, the carriers' report webhooks and /metrics) takes the ingress
    controller and Prometheus only; the migrations take nothing."""
    defaults = Settings()
    balsong_worker: Peer = (BALSONG_NAMESPACE, pod_templates()["worker"]["metadata"]["labels"])
    others = (SOME_APP, PROMETHEUS_ELSEWHERE, balsong_worker)

    for component, port in (
        ("worker", defaults.worker_metrics_port),
        ("scheduler", defaults.scheduler_metrics_port),
        ("callbacks", defaults.callbacks_metrics_port),
    ):
        assert allowed(component, "Ingress", port, pod=PROMETHEUS), component
        assert not allowed(component, "Ingress", port, pod=INGRESS_CONTROLLER), component
        assert not any(allowed(component, "Ingress", port, pod=p) for p in others), component
        assert not allowed(component, "Ingress", 8000, pod=PROMETHEUS), component

    assert allowed("api", "Ingress", 8000, pod=INGRESS_CONTROLLER)
    assert allowed("api", "Ingress", 8000, pod=PROMETHEUS)
    assert not any(allowed("api", "Ingress", 8000, pod=p) for p in others)
    assert not allowed("api", "Ingress", 8000, ip="203.0.113.10")
    assert not allowed("api", "Ingress", 9191, pod=PROMETHEUS)
    assert not any(allowed("migrate", "Ingress", 8000, pod=p) for p in (PROMETHEUS, INGRESS_CONTROLLER))


@pytest.mark.parametrize("component", sorted(NEEDS))
def test_each_process_reaches_what_it_needs_and_nothing_else(component: str) -> None:
    """Given one process's pods and the NetworkPolicies
    When they connect to DNS, the data stores, public HTTPS, plain HTTP, private and link-local
    addresses (cloud metadata) and other apps
    Then exactly what the process needs is allowed: the database for all; Redis and RabbitMQ for
    the api, workers and scheduler; public HTTPS for those (the carriers) and for the callback
    dispatcher (tenants' URLs); DNS for every one; nothing else."""
    assert allowed(component, "Egress", 53, pod=DNS, protocol="UDP")
    assert allowed(component, "Egress", 53, pod=DNS, protocol="TCP")
    assert not allowed(component, "Egress", 53, pod=SOME_APP, protocol="UDP")

    reached = {
        name
        for name, (pod, ip, port) in DESTINATIONS.items()
        if allowed(component, "Egress", port, pod=pod, ip=ip)
    }

    assert reached == NEEDS[component]
