# The trlgate application image: the API, the worker and the CLI (migrations, users) in one.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
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
COPY templates templates
RUN pip install . && useradd --system --uid 10001 trlgate && mkdir -p /app/data && chown trlgate /app/data
USER trlgate
EXPOSE 8000
# `python -m api` rather than uvicorn's own command: it applies trlgate's settings, among them
# TRLGATE_FORWARDED_ALLOW_IPS (uvicorn alone trusts X-Forwarded-For from 127.0.0.1).
ENV TRLGATE_API_HOST=0.0.0.0
CMD ["python", "-m", "api"]
