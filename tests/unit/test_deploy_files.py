"""The deployment files (Procfile, docker-compose.yml, Dockerfile, .dockerignore) agree with each
other and with the code: every process has a service, every dependency can be waited on, and every
setting the stack passes is one balsong reads."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from engine.config import DEVELOPMENT_SECRETS, Settings

# PyYAML is not a declared dependency of balsong; it arrives with uvicorn[standard].
yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROCFILE = ROOT / "Procfile"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SETTINGS_ENV = {"BALSONG_" + f.name.upper() for f in fields(Settings)}
BALSONG_PROCESSES = ("api", "worker", "scheduler", "callbacks", "simulator")


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def procfile() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in PROCFILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        assert sep and re.fullmatch(r"[a-z][a-z0-9_-]*", name), f"not a Procfile entry: {line!r}"
        assert name not in entries, f"{name} twice in the Procfile"
        entries[name] = command.strip()
    return entries


def balsong_services() -> dict[str, dict[str, Any]]:
    """The services built from the Dockerfile (they run balsong's own code)."""
    return {name: svc for name, svc in services().items() if "build" in svc}


def depends_on(svc: dict[str, Any]) -> dict[str, str]:
    """``depends_on`` in either form, as {service: condition}."""
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# -- Procfile ---------------------------------------------------------------------------------------


def test_procfile_starts_every_balsong_process_on_loopback() -> None:
    """Given the Procfile
    When its entries are read
    Then it names exactly the api, worker, scheduler, callbacks and simulator processes,
    and the servers among them bind 127.0.0.1 (it runs against local services)."""
    entries = procfile()

    assert set(entries) == set(BALSONG_PROCESSES)
    for name in ("api", "simulator"):
        assert "--host 127.0.0.1" in entries[name], entries[name]


def test_every_procfile_process_is_a_compose_service() -> None:
    """Given the Procfile and docker-compose.yml
    When the Procfile's process names are looked up among the compose services
    Then each one is there, built from the Dockerfile."""
    built = balsong_services()

    missing = [name for name in procfile() if name not in built]

    assert not missing, f"Procfile processes without a compose service built from the Dockerfile: {missing}"


# -- docker-compose.yml -----------------------------------------------------------------------------


def test_compose_has_the_whole_stack_and_no_version_key() -> None:
    """Given docker-compose.yml
    When its top level is read
    Then it follows the Compose spec (no obsolete ``version:``) and has the servers, the one-shot
    migration and every balsong process."""
    data = compose()

    assert "version" not in data
    assert {"postgres", "redis", "rabbitmq", "migrate", *BALSONG_PROCESSES} <= set(data["services"])


def test_every_balsong_service_has_a_health_check_or_is_one_shot() -> None:
    """Given the services built from the Dockerfile
    When each is checked for a way to tell it is up
    Then a long-running one has a health check and a restart policy, and a one-shot one
    (restart "no") is waited for with service_completed_successfully by whoever needs it."""
    all_services = services()
    awaited_to_finish = {
        target
        for svc in all_services.values()
        for target, condition in depends_on(svc).items()
        if condition == "service_completed_successfully"
    }

    for name, svc in balsong_services().items():
        if svc.get("restart") == "no":
            assert "healthcheck" not in svc, f"{name} is one-shot; a health check would never pass"
            assert name in awaited_to_finish, f"{name} is one-shot but nothing waits for it to finish"
        else:
            assert (svc.get("healthcheck") or {}).get("test"), f"{name} has no health check"
            assert not svc["healthcheck"].get("disable"), f"{name} has its health check disabled"
            assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), (
                f"{name}: {svc.get('restart')}"
            )


def test_every_service_healthy_dependency_has_a_health_check() -> None:
    """Given every depends_on in docker-compose.yml
    When it waits for service_healthy
    Then the service waited for exists and defines a health check (else it would never be healthy)."""
    all_services = services()

    for name, svc in all_services.items():
        for target, condition in depends_on(svc).items():
            assert target in all_services, f"{name} depends on unknown service {target}"
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert (all_services[target].get("healthcheck") or {}).get("test"), (
                    f"{name} waits for {target} to be healthy, but {target} has no health check"
                )


def test_processes_wait_for_their_dependencies() -> None:
    """Given the long-running balsong processes
    When their depends_on are read
    Then api, worker, scheduler and callbacks start only after the migrations finished and
    PostgreSQL, Redis and RabbitMQ are healthy, and the migrations wait for a healthy PostgreSQL."""
    all_services = services()
    needs = {
        "migrate": "service_completed_successfully",
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "rabbitmq": "service_healthy",
    }

    for name in ("api", "worker", "scheduler", "callbacks"):
        deps = depends_on(all_services[name])
        assert {k: deps.get(k) for k in needs} == needs, name
    assert depends_on(all_services["migrate"]) == {"postgres": "service_healthy"}
    assert all_services["migrate"]["command"] == ["db", "upgrade"]
    assert all_services["migrate"]["restart"] == "no"


def test_every_balsong_service_but_the_simulator_waits_for_the_migrations() -> None:
    """Given every service built from the Dockerfile
    When its depends_on are read
    Then each one but the migration itself and the carrier simulator (a stand-in for the
    carriers, which touches no balsong store) starts only once `balsong db upgrade` exited 0,
    so none runs against an old schema; the simulator does not wait for it."""
    built = balsong_services()

    waiting = {
        name
        for name, svc in built.items()
        if depends_on(svc).get("migrate") == "service_completed_successfully"
    }

    assert waiting == set(built) - {"migrate", "simulator"}
    assert "migrate" not in depends_on(built["simulator"])


def test_rabbitmq_runs_with_its_management_ui_published() -> None:
    """Given the rabbitmq service
    When its image and ports are read
    Then it is a management image (the UI and its API are in it) and port 15672 is published on
    the host's loopback (the broker user's password is the public default)."""
    rabbitmq = services()["rabbitmq"]

    assert rabbitmq["image"].split(":")[1].endswith("management"), rabbitmq["image"]
    assert "127.0.0.1:15672:15672" in [str(p) for p in rabbitmq["ports"]]


def test_compose_env_names_are_real_settings() -> None:
    """Given every BALSONG_* name docker-compose.yml uses (environment keys and ${...} references)
    When each is compared with engine.config.Settings
    Then it is a Settings field's variable (a misspelt one would silently fall back to a default)."""
    text = COMPOSE.read_text(encoding="utf-8")
    used = set(re.findall(r"\bBALSONG_[A-Z0-9_]+", text))
    for svc in services().values():
        used |= {k for k in environment(svc) if k.startswith("BALSONG_")}

    unknown = sorted(used - SETTINGS_ENV)

    assert used
    assert not unknown, f"not balsong settings: {unknown}"


def test_balsong_services_are_configured_for_the_compose_network() -> None:
    """Given the environment of every service built from the Dockerfile
    When the connection settings are read
    Then each names the compose services (not 127.0.0.1), the broker URL carries the vhost, and
    both carrier APIs (SMS and AlimTalk) are the simulator."""
    for name, svc in balsong_services().items():
        env = environment(svc)
        for key in (
            "BALSONG_DATABASE_URL",
            "BALSONG_REDIS_URL",
            "BALSONG_BROKER_URL",
            "BALSONG_SMS_API_URL",
            "BALSONG_SMS_APP_KEY",
            "BALSONG_SMS_SECRET_KEY",
            "BALSONG_KAKAO_API_URL",
            "BALSONG_KAKAO_APP_KEY",
            "BALSONG_KAKAO_SECRET_KEY",
            "BALSONG_KAKAO_SENDER_KEY",
        ):
            assert env.get(key), f"{name}: {key} missing"
        assert "@postgres:5432/" in env["BALSONG_DATABASE_URL"], name
        assert env["BALSONG_REDIS_URL"].startswith("redis://redis:6379/"), name
        assert env["BALSONG_BROKER_URL"].startswith("amqp://") and env["BALSONG_BROKER_URL"].endswith(
            "@rabbitmq:5672/%2F"
        ), name
        assert env["BALSONG_SMS_API_URL"] == "http://simulator:8070", name
        assert env["BALSONG_KAKAO_API_URL"] == "http://simulator:8070", name


def test_simulator_uses_the_credentials_the_engine_sends() -> None:
    """Given the simulator service and the engine services' carrier credentials
    When the simulator's --app-key/--secret-key are compared with BALSONG_SMS_APP_KEY/_SECRET_KEY
    Then they are the same, and default to the values Settings has in development; AlimTalk is
    given the same pair and the simulator's sender key."""
    all_services = services()
    argv = [str(a) for a in all_services["simulator"]["command"]]
    worker_env = environment(all_services["worker"])

    assert flag(argv, "--app-key") == worker_env["BALSONG_SMS_APP_KEY"]
    assert flag(argv, "--secret-key") == worker_env["BALSONG_SMS_SECRET_KEY"]
    assert flag(argv, "--port") == "8070"
    # AlimTalk: the simulator takes the SMS pair for both APIs, and its own sender key.
    assert worker_env["BALSONG_KAKAO_APP_KEY"] == worker_env["BALSONG_SMS_APP_KEY"]
    assert worker_env["BALSONG_KAKAO_SECRET_KEY"] == worker_env["BALSONG_SMS_SECRET_KEY"]
    assert flag(argv, "--kakao-sender-key") == worker_env["BALSONG_KAKAO_SENDER_KEY"]
    assert f":-{DEVELOPMENT_SECRETS['kakao_sender_key']}}}" in worker_env["BALSONG_KAKAO_SENDER_KEY"]
    assert DEVELOPMENT_SECRETS["kakao_app_key"] == DEVELOPMENT_SECRETS["sms_app_key"]
    assert DEVELOPMENT_SECRETS["kakao_secret_key"] == DEVELOPMENT_SECRETS["sms_secret_key"]
    assert f":-{DEVELOPMENT_SECRETS['sms_app_key']}}}" in worker_env["BALSONG_SMS_APP_KEY"]
    assert f":-{DEVELOPMENT_SECRETS['sms_secret_key']}}}" in worker_env["BALSONG_SMS_SECRET_KEY"]


def test_the_development_stacks_say_they_are_development() -> None:
    """Given the Procfile and docker-compose.yml, which run the carrier simulator
    When the environment of their balsong processes is read
    Then each says BALSONG_ENV=development explicitly (unset, a process is production and
    refuses to start without real secrets)."""
    entries = procfile()
    for name in ("api", "worker", "scheduler", "callbacks"):
        assert entries[name].startswith("env BALSONG_ENV=development balsong "), entries[name]
    for name, svc in balsong_services().items():
        assert environment(svc).get("BALSONG_ENV") == "development", name


def test_api_port_is_published_and_health_checks_hit_the_health_routes() -> None:
    """Given the api and simulator services
    When their ports and health checks are read
    Then the API's port 8000 is published and both probe their health route with Python
    (python:3.11-slim has no curl)."""
    all_services = services()

    assert any(str(p).endswith("8000:8000") for p in all_services["api"]["ports"])
    for name, route in (("api", ":8000/healthz"), ("simulator", ":8070/_simulator/health")):
        test = all_services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], test
        assert route in test[3] and "urllib" in test[3], test


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client installed")
def test_docker_compose_accepts_the_file() -> None:
    """Given the docker client with the compose plugin
    When `docker compose config -q` reads docker-compose.yml (no engine needed)
    Then it reports no error."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(
            "the docker compose plugin is not installed: "
            + (probe.stderr or probe.stdout).strip().splitlines()[0]
        )

    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )

    assert result.returncode == 0, result.stderr


def test_scheduler_and_callbacks_run_their_command_and_are_healthy_while_their_metrics_answer() -> None:
    """Given the scheduler and callbacks services, and the Procfile
    When their commands and health checks are read
    Then each runs its own `balsong` subcommand in both, and its health check fetches its own
    metrics endpoint (the port Settings gives it) with Python."""
    all_services = services()
    entries = procfile()
    defaults = Settings()

    for name, port in (
        ("scheduler", defaults.scheduler_metrics_port),
        ("callbacks", defaults.callbacks_metrics_port),
    ):
        assert all_services[name]["command"] == [name], name
        assert entries[name] == f"env BALSONG_ENV=development balsong {name}", entries[name]
        test = all_services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], test
        assert f"http://127.0.0.1:{port}/metrics" in test[3], test


# -- Dockerfile -------------------------------------------------------------------------------------


def test_dockerfile_runs_balsong_as_a_non_root_user_without_dev_dependencies() -> None:
    """Given the Dockerfile
    When its instructions are read
    Then it starts from python:3.11-slim, installs the locked dependencies and the package
    without extras, copies every package the project declares, switches to a non-root user and
    has `balsong` as entrypoint."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]

    assert instructions[0] == "FROM python:3.11-slim"
    assert 'ENTRYPOINT ["balsong"]' in instructions
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    # The dependencies come from the runtime lock file, hash-checked; the package adds none.
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in text
    assert "pip install --no-cache-dir --no-deps ." in text
    assert "[dev]" not in text
    for package in ("engine", "actors", "carriers", "metrics", "api", "cli", "migrations"):
        assert f"COPY {package} ./{package}" in instructions, package


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    """Given .dockerignore
    When its patterns are read
    Then the virtualenv, git history, caches, run directory, tests and benchmarks are excluded."""
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }

    assert {
        ".venv",
        ".git",
        ".run",
        "tests",
        "bench",
        "**/__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
    } <= patterns
