# The trlgate application image: the API, the worker and the CLI (migrations, users) in one.
# An exact base image and hashed pins (requirements.lock, refreshed by scripts/lock.sh): the same
# commit builds the same image, and a tampered or substituted package fails the build.
FROM python:3.11.17-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The dependencies in a layer of their own: a code change does not reinstall them.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY config.py worker.py ./
COPY workflows workflows
COPY connection connection
COPY activities activities
COPY gates gates
COPY api api
COPY domain domain
COPY storage storage
COPY cli cli
COPY bench bench
COPY services services
COPY web web
COPY telemetry telemetry
COPY templates templates
# --no-deps: nothing beyond the lock gets in; pip check fails the build if the lock lacks one.
# Bytecode written at build (PYTHONDONTWRITEBYTECODE above, and /app is not the worker user's):
# the workflow sandbox imports the workflow modules afresh for every run, compiling them from
# source each time without it (worker.workflow_bytecode).
RUN pip install --no-deps --no-build-isolation . && pip check && python -m compileall -q /app \
    && useradd --system --uid 10001 trlgate && mkdir -p /app/data && chown trlgate /app/data
USER trlgate
EXPOSE 8000
# `python -m api` rather than uvicorn's own command: it applies trlgate's settings, among them
# TRLGATE_FORWARDED_ALLOW_IPS (uvicorn alone trusts X-Forwarded-For from 127.0.0.1).
ENV TRLGATE_API_HOST=0.0.0.0
CMD ["python", "-m", "api"]
