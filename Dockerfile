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

# Dependencies first, from pyproject.toml alone, so that editing the code does not reinstall them.
# Only [project].dependencies: the dev extra (pytest, ruff, mypy) never enters the image.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The source, least often changed first. (README.md is optional: the glob lets the build go on without it.)
COPY migrations ./migrations
COPY metrics ./metrics
COPY engine ./engine
COPY carriers ./carriers
COPY actors ./actors
COPY scheduler ./scheduler
COPY api ./api
COPY cli ./cli
COPY pyproject.toml README.md* ./

# The package itself (dependencies are already satisfied); this installs the `balsong` console script.
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info \
    && python -m compileall -q /app

USER balsong:balsong

# api (and its /metrics), simulator, worker metrics, scheduler metrics
EXPOSE 8000 8070 9191 9192

ENTRYPOINT ["balsong"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
