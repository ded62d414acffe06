"""prometheus_client's multiprocess mode: one directory of sample files per kind of process.

(In cli/, not metrics/: importing anything in the ``metrics`` package imports prometheus_client,
which must not happen before the directory is set.)

Every process of one kind (the API's uvicorn workers, Dramatiq's worker processes) writes its
samples to files in that kind's directory, and the kind's endpoint adds them up. Each kind has
its own directory under ``Settings.metrics_dir`` (``api``, ``worker``, ``scheduler``): were they
shared, every endpoint would report every process's samples and Prometheus would count them
three times.

The directory must be emptied when the process group starts (else a restart would resume from
the last run's totals, and samples of dead processes would linger), and ``PROMETHEUS_MULTIPROC_DIR``
must be set before prometheus_client is first imported: it picks its storage at import.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from engine.config import Settings

ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Dramatiq's Prometheus middleware reads its directory and address from these, at import.
DRAMATIQ_DB_ENV, DRAMATIQ_HOST_ENV, DRAMATIQ_PORT_ENV = (
    "dramatiq_prom_db",
    "dramatiq_prom_host",
    "dramatiq_prom_port",
)


def directory_for(settings: Settings, kind: str) -> Path:
    """The sample directory of one kind of process (``api``, ``worker``, ``scheduler``)."""
    return Path(settings.metrics_dir) / kind


def prepare(settings: Settings, kind: str) -> Path:
    """Empty this kind's sample directory and point this process (and its children) at it.

    Call once, in the process that starts the group, before anything imports prometheus_client.
    """
    if "prometheus_client" in sys.modules and os.environ.get(ENV) is None:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    path = directory_for(settings, kind)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[ENV] = str(path)
    # libpq's own variable: every PostgreSQL session of this process and its children says which
    # kind of process it serves (pg_stat_activity.application_name), for SREs and profiles.
    os.environ.setdefault("PGAPPNAME", f"balsong-{kind}")
    return path


def prepare_worker(settings: Settings) -> Path:
    """`prepare` for Dramatiq's workers, whose Prometheus middleware has its own variables."""
    path = prepare(settings, "worker")
    os.environ[DRAMATIQ_DB_ENV] = str(path)
    os.environ[DRAMATIQ_HOST_ENV] = settings.metrics_host
    os.environ[DRAMATIQ_PORT_ENV] = str(settings.worker_metrics_port)
    return path
