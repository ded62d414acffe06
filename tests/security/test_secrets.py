"""No usable default secret (issue 20).

Given a process that is not told ``BALSONG_ENV=development``, when a secret (carrier keys, the
KakaoTalk sender key, webhook signatures) is missing or still holds the repository's public
development value, then the api, worker and scheduler refuse to start, naming every one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from engine.config import DEVELOPMENT_SECRETS, MissingSecrets, Settings

SECRET_VARIABLES = sorted("BALSONG_" + name.upper() for name in DEVELOPMENT_SECRETS)
#: Real-looking values for every secret.
PRODUCTION_SECRETS = {variable: f"prod-{variable.lower()}-7f3a" for variable in SECRET_VARIABLES}


def test_without_balsong_env_a_process_is_production_and_has_no_secret() -> None:
    # Given an environment that says nothing
    settings = Settings.from_env({})

    # Then it is production, and no secret has a value
    assert settings.env == "production"
    assert all(getattr(settings, name) == "" for name in DEVELOPMENT_SECRETS)
    # And the start-up check names every one of them, in one error
    with pytest.raises(MissingSecrets) as refused:
        settings.check_secrets()
    assert sorted(refused.value.names) == SECRET_VARIABLES
    assert all(variable in str(refused.value) for variable in SECRET_VARIABLES)
    assert "BALSONG_ENV=development" in str(refused.value)


def test_the_public_development_values_are_refused_in_production() -> None:
    # Given production with every secret set, two of them to the repository's public values
    environ = {
        **PRODUCTION_SECRETS,
        "BALSONG_SMS_WEBHOOK_SIGNATURE": "balsong-local-webhook",
        "BALSONG_KAKAO_SECRET_KEY": "balsong-local-secret",
    }
    settings = Settings.from_env({"BALSONG_ENV": "production", **environ})

    # Then exactly those two are named
    assert settings.missing_secrets() == ["BALSONG_KAKAO_SECRET_KEY", "BALSONG_SMS_WEBHOOK_SIGNATURE"]


def test_production_with_every_secret_starts() -> None:
    # Given production with every secret set, then the check passes and the values are kept
    settings = Settings.from_env({"BALSONG_ENV": "production", **PRODUCTION_SECRETS})
    settings.check_secrets()
    assert settings.sms_webhook_signature == PRODUCTION_SECRETS["BALSONG_SMS_WEBHOOK_SIGNATURE"]


def test_development_keeps_the_local_defaults_and_what_is_set() -> None:
    # Given development, with one secret set
    settings = Settings.from_env({"BALSONG_ENV": "development", "BALSONG_SMS_APP_KEY": "mine"})

    # Then the others take the simulator's values, and nothing is missing
    assert settings.sms_app_key == "mine"
    assert settings.kakao_webhook_signature == DEVELOPMENT_SECRETS["kakao_webhook_signature"]
    assert settings.missing_secrets() == []


def test_an_unknown_environment_is_an_error() -> None:
    # Given a misspelt BALSONG_ENV, then the settings cannot be read (it is not silently production)
    with pytest.raises(ValueError, match="BALSONG_ENV"):
        Settings.from_env({"BALSONG_ENV": "dev"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [
        ["api", "--host", "127.0.0.1", "--port", "0"],
        ["worker", "--processes", "1", "--threads", "1"],
        ["scheduler"],
    ],
    ids=["api", "worker", "scheduler"],
)
def test_a_process_without_its_secrets_does_not_start(command: list[str], tmp_path: object) -> None:
    # Given an environment with no BALSONG_ENV and no secret (nothing else balsong reads either)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BALSONG_")}
    if command[0] == "api":
        command = [*command[:-1], str(free_port())]
    environ["BALSONG_METRICS_DIR"] = str(tmp_path)

    # When the process is started
    started = subprocess.run(
        [sys.executable, "-m", "cli.main", *command], env=environ, capture_output=True, text=True, timeout=120
    )

    # Then it exits non-zero at once, naming every missing secret in one message
    assert started.returncode != 0, started.stdout + started.stderr
    assert "cannot start" in started.stderr
    assert all(variable in started.stderr for variable in SECRET_VARIABLES), started.stderr
