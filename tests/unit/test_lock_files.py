"""The lock files agree with pyproject.toml (issue 25 item 4).

requirements.lock pins what the image runs, requirements-dev.lock that and the dev extra; both
are made by ``make lock`` (pip-compile --generate-hashes) and installed with --require-hashes by
``make install`` and the Dockerfile. A pin changed in pyproject.toml without ``make lock`` would
install the old version, or fail on a missing hash: these tests say so first.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: list[str]) -> dict[str, str]:
    """``name[extras]==version`` requirements as {normalized name: version}; every one is pinned."""
    found = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;]+)", requirement)
        assert match, f"{requirement!r} is not pinned exactly (name==version)"
        found[normalized(match.group(1))] = match.group(3)
    return found


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """The lock file's entries: {normalized name: (version, number of hashes)}."""
    entries: dict[str, tuple[str, int]] = {}
    name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line):
            name = normalized(match.group(1))
            entries[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:"):
            version, hashes = entries[name]
            entries[name] = (version, hashes + 1)
    return entries


@pytest.fixture(scope="module")
def project() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"runtime": data["dependencies"], "dev": data["optional-dependencies"]["dev"]}


def test_every_direct_dependency_is_locked_at_its_pin(project: dict[str, list[str]]) -> None:
    # Given pyproject's pins and the two lock files
    runtime, dev = pins(project["runtime"]), pins(project["dev"])
    runtime_lock, dev_lock = locked(RUNTIME_LOCK), locked(DEV_LOCK)

    # Then the image's lock has every runtime pin at its version, and the dev lock every pin
    assert {name: runtime_lock.get(name, ("missing", 0))[0] for name in runtime} == runtime
    assert {name: dev_lock.get(name, ("missing", 0))[0] for name in runtime | dev} == runtime | dev
    # And no dev tool enters the image
    assert not set(dev) & set(runtime_lock), "a dev dependency is in requirements.lock"


def test_the_two_locks_agree_and_every_entry_is_hashed() -> None:
    # Given both lock files
    runtime_lock, dev_lock = locked(RUNTIME_LOCK), locked(DEV_LOCK)

    # Then what the image runs is what the tests run, at the same versions
    assert {name: dev_lock.get(name) for name in runtime_lock} == runtime_lock
    # And every entry, transitive ones too, carries a hash (pip's --require-hashes needs them)
    assert len(dev_lock) > len(runtime_lock) > 40
    assert [name for name, (_, hashes) in dev_lock.items() if hashes == 0] == []


def test_the_locks_say_how_they_are_made() -> None:
    # Given the lock files, then each names the command that refreshes it and no local index
    for path in (RUNTIME_LOCK, DEV_LOCK):
        text = path.read_text(encoding="utf-8")
        assert "#    make lock\n" in text, path.name
        assert "--index-url" not in text and "--find-links" not in text and "file://" not in text


def test_installs_use_the_lock_with_hashes() -> None:
    # Given the Makefile's install rule and the Dockerfile
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")

    # Then each installs its lock file hash-checked, and the package without resolving anything
    assert "pip install -q --require-hashes -r requirements-dev.lock" in makefile
    assert "pip install -q --no-deps -e ." in makefile
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "pip-tools==$(PIP_TOOLS_VERSION)" in makefile and re.search(r"PIP_TOOLS_VERSION = \d", makefile)
