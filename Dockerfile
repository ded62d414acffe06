# balsong: one image for every process (api, worker, scheduler, simulator, migrations).
#   docker build -t balsong .
#   docker run --rm balsong db upgrade          # the entrypoint is the `balsong` CLI
# docker-compose.yml runs the whole stack from this image.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN groupadd --system --gid 10001 balsong \
    && useradd --system --uid 10001 --gid balsong --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin balsong

WORKDIR /app

# PDF send statements: WeasyPrint draws text with Pango, and Korean needs a Hangul font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-nanum \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, from the lock file alone, so that editing the code does not reinstall them:
# every dependency, transitive ones too, at its locked version, and pip refuses any file whose
# hash is not in the lock (`make lock` refreshes it). requirements.lock holds only
# [project].dependencies: the dev extra (pytest, ruff, mypy) never enters the image.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

# The source, least often changed first. (README.md is optional: the glob lets the build go on
# without it; LICENSE is not: the package ships it.)
COPY migrations ./migrations
COPY metrics ./metrics
COPY engine ./engine
COPY carriers ./carriers
COPY actors ./actors
COPY scheduler ./scheduler
COPY api ./api
COPY cli ./cli
COPY pyproject.toml LICENSE README.md* ./

# The package itself (its dependencies are the lock's, installed above: --no-deps, so nothing
# unlocked slips in); this installs the `balsong` console script.
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info \
    && python -m compileall -q /app

USER balsong:balsong

# api (and its /metrics), simulator, worker metrics, scheduler metrics
EXPOSE 8000 8070 9191 9192

ENTRYPOINT ["balsong"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
