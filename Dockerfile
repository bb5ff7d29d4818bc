# One image for every process: `web`, `worker` and `release` (see Procfile and docs/operations.md).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PYTHON=/app/.venv/bin/python \
    GUNICORN=/app/.venv/bin/gunicorn \
    PATH=/app/.venv/bin:$PATH

RUN pip install --no-cache-dir "uv==0.13.9" \
 && useradd --create-home --uid 10001 billing

WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY billing_project ./billing_project
COPY metering ./metering
COPY cohorts ./cohorts
COPY invoices ./invoices
COPY reconciliation ./reconciliation
COPY exports ./exports
COPY templates ./templates
COPY scripts ./scripts
COPY manage.py Procfile ./

# collectstatic needs settings but no services; the throwaway key never reaches a container.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret-0000000000000000000000 DJANGO_DEBUG=false \
    STRIPE_SECRET_KEY=sk_test_collectstatic STRIPE_WEBHOOK_SECRET=whsec_collectstatic \
    STRIPE_EVENT_DESTINATION_SECRET=whsec_collectstatic \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 LEGACY_DATABASE_URL=sqlite:////tmp/legacy.sqlite3 \
    python manage.py collectstatic --noinput -v 0 \
 && chown -R billing /app/var 2>/dev/null || true

USER billing
EXPOSE 8000
CMD ["scripts/web"]
