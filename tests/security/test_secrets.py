"""No usable default secret or simulator URL (issues 20 and 25).

Given a process that is not told ``BALSONG_ENV=development``, when a secret (carrier keys, the
KakaoTalk sender key, webhook signatures, the cursor key) is missing or still holds the
repository's public development value, or a carrier URL still points at the local simulator,
then the api, worker, scheduler and callbacks dispatcher refuse to start, naming every one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from engine.config import CARRIER_URLS, DEVELOPMENT_SECRETS, MissingSecrets, Settings

SECRET_VARIABLES = sorted("BALSONG_" + name.upper() for name in DEVELOPMENT_SECRETS)
URL_VARIABLES = sorted("BALSONG_" + name.upper() for name in CARRIER_URLS)
#: Real-looking values for every secret, and the providers' URLs.
PRODUCTION_SECRETS = {variable: f"prod-{variable.lower()}-7f3a" for variable in SECRET_VARIABLES}
PRODUCTION_URLS = {
    "BALSONG_SMS_API_URL": "https://api-sms.cloud.toast.com",
    "BALSONG_KAKAO_API_URL": "https://api-alimtalk.cloud.toast.com",
}


def test_without_balsong_env_a_process_is_production_and_has_no_secret() -> None:
    # Given an environment that says nothing
    settings = Settings.from_env({})

    # Then it is production, and no secret has a value
    assert settings.env == "production"
    assert all(getattr(settings, name) == "" for name in DEVELOPMENT_SECRETS)
    # And the start-up check names every one of them, and the simulator's URLs, in one error
    with pytest.raises(MissingSecrets) as refused:
        settings.check_secrets()
    assert sorted(refused.value.secrets) == SECRET_VARIABLES
    assert sorted(refused.value.urls) == URL_VARIABLES
    assert all(variable in str(refused.value) for variable in SECRET_VARIABLES + URL_VARIABLES)
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


def test_production_with_every_secret_and_the_providers_urls_starts() -> None:
    # Given production with every secret set and the carrier URLs at the providers
    settings = Settings.from_env({"BALSONG_ENV": "production", **PRODUCTION_SECRETS, **PRODUCTION_URLS})
    # Then the check passes and the values are kept
    settings.check_secrets()
    assert settings.sms_webhook_signature == PRODUCTION_SECRETS["BALSONG_SMS_WEBHOOK_SIGNATURE"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8070",
        "http://127.0.0.1:9000/sms",
        "http://127.8.0.1:8070",
        "http://localhost:8070",
        "http://[::1]:8070",
        "https://LOCALHOST",
    ],
)
def test_a_carrier_url_at_the_simulator_is_refused_in_production(url: str) -> None:
    # Given production with every secret, and the SMS URL on a loopback address
    environ = {**PRODUCTION_SECRETS, **PRODUCTION_URLS, "BALSONG_SMS_API_URL": url}
    settings = Settings.from_env({"BALSONG_ENV": "production", **environ})

    # When the start-up check runs, then it refuses, naming that URL's variable and no secret
    with pytest.raises(MissingSecrets) as refused:
        settings.check_secrets()
    assert refused.value.names == ["BALSONG_SMS_API_URL"]
    assert "BALSONG_SMS_API_URL" in str(refused.value) and "simulator" in str(refused.value)
    assert "secrets are not set" not in str(refused.value)


def test_a_carrier_url_off_loopback_is_not_mistaken_for_the_simulator() -> None:
    # Given production with URLs that merely resemble loopback (a host named like it, a private
    # address a proxy may have)
    environ = {
        **PRODUCTION_SECRETS,
        "BALSONG_SMS_API_URL": "https://127.0.0.1.example.com",
        "BALSONG_KAKAO_API_URL": "http://10.0.0.7:8080",
    }
    # Then nothing is refused
    assert Settings.from_env({"BALSONG_ENV": "production", **environ}).simulator_urls() == []


def test_development_keeps_the_simulator_urls() -> None:
    # Given development with nothing set, then the simulator's URLs are the carriers' and allowed
    settings = Settings.from_env({"BALSONG_ENV": "development"})
    assert settings.sms_api_url == settings.kakao_api_url == "http://127.0.0.1:8070"
    settings.check_secrets()


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
        ["callbacks"],
    ],
    ids=["api", "worker", "scheduler", "callbacks"],
)
def test_a_process_without_its_secrets_does_not_start(command: list[str], tmp_path: object) -> None:
    # Given an environment with no BALSONG_ENV, no secret and no carrier URL (nothing else balsong
    # reads either), but a misspelt setting
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BALSONG_")}
    environ["BALSONG_DATABSE_URL"] = "postgresql://nowhere/balsong"
    if command[0] == "api":
        command = [*command[:-1], str(free_port())]
    environ["BALSONG_METRICS_DIR"] = str(tmp_path)

    # When the process is started
    started = subprocess.run(
        [sys.executable, "-m", "cli.main", *command], env=environ, capture_output=True, text=True, timeout=120
    )

    # Then it exits non-zero at once, naming every missing secret and simulator URL in one message
    assert started.returncode != 0, started.stdout + started.stderr
    assert "cannot start" in started.stderr
    refusal = next(line for line in started.stderr.splitlines() if "cannot start" in line)
    assert all(variable in refusal for variable in SECRET_VARIABLES + URL_VARIABLES), started.stderr
    # And it warned about the misspelt setting first, once, naming the one meant
    warnings = [line for line in started.stderr.splitlines() if "BALSONG_DATABSE_URL" in line]
    assert len(warnings) == 1, started.stderr
    assert "BALSONG_DATABASE_URL" in warnings[0] and '"WARNING"' in warnings[0]
