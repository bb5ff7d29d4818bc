"""Settings from the environment: production shape, deploy checks, mode from the key prefix."""

import json
import os
import subprocess
import sys

import pytest

from tests.harness.qcluster import ROOT

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "p7#x!q2v9m@k4w8z$e1r5t0y3u6i-o9p2a5s8d1f4g7h0j3k6l9z2x5c8v1b4n7m0",
    "DJANGO_ALLOWED_HOSTS": "billing.adventive.com",
    "DATABASE_URL": "postgres://billing@127.0.0.1:5432/billing_prod",
    "LEGACY_DATABASE_URL": "postgres://billing_ro@127.0.0.1:5432/billing_legacy_prod",
    "STRIPE_SECRET_KEY": "rk_live_ProductionKey000000000000000000",
    "STRIPE_WEBHOOK_SECRET": "whsec_production_secret",
    "STRIPE_EVENT_DESTINATION_SECRET": "whsec_production_destination_secret",
    "MAILGUN_API_KEY": "key-production",
    "MAILGUN_DOMAIN": "notify.adventive.com",
    "MAILGUN_WEBHOOK_SIGNING_KEY": "signing-key",
    "R2_INVOICE_BUCKET": "adventive-invoices",
    "R2_ENDPOINT_URL": "https://accountid.r2.cloudflarestorage.com",
    "R2_ACCESS_KEY_ID": "r2-access",
    "R2_SECRET_ACCESS_KEY": "r2-secret",
}


OWN_PREFIXES = ("DJANGO_", "STRIPE_", "MAILGUN_", "R2_", "DATABASE_", "LEGACY_", "Q_")


def clean_env(**env: str) -> dict[str, str]:
    """The current environment without any of the app's variables, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    return {**base, **env, "DJANGO_SETTINGS_MODULE": "billing_project.settings"}


def run_django(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `script` after django.setup() in a fresh process with exactly this environment."""
    full = clean_env(**env)
    return subprocess.run(
        [sys.executable, "-c", "import django;django.setup()\n" + script],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_in(env: dict[str, str], *names: str) -> dict:
    script = (
        "import json;from django.conf import settings as s\n"
        f"print(json.dumps({{n: getattr(s, n) for n in {list(names)!r}}}, default=str))"
    )
    result = run_django(script, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_production_variables():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean_env(**PRODUCTION_ENV),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_use_postgres_r2_mailgun_and_live_stripe():
    values = settings_in(
        PRODUCTION_ENV,
        "DATABASES",
        "STORAGES",
        "EMAIL_BACKEND",
        "STRIPE_LIVE_MODE",
        "STRIPE_LIVE_SECRET_KEY",
        "STRIPE_TEST_SECRET_KEY",
        "LEGACY_DATABASE_WRITABLE",
        "DEBUG",
        "TIME_ZONE",
    )
    assert values["DEBUG"] is False
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert values["DATABASES"]["legacy"]["OPTIONS"] == {
        "options": "-c default_transaction_read_only=on"
    }
    assert values["LEGACY_DATABASE_WRITABLE"] is False
    storage = values["STORAGES"]["default"]
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["region_name"] == "auto"
    assert storage["OPTIONS"]["default_acl"] is None
    assert storage["OPTIONS"]["querystring_auth"] is True
    assert values["EMAIL_BACKEND"] == "anymail.backends.mailgun.EmailBackend"
    assert values["STRIPE_LIVE_MODE"] is True
    assert values["STRIPE_LIVE_SECRET_KEY"] == PRODUCTION_ENV["STRIPE_SECRET_KEY"]
    assert values["STRIPE_TEST_SECRET_KEY"] == ""
    assert values["TIME_ZONE"] == "UTC"


@pytest.mark.parametrize(
    ("key", "live"),
    [
        ("sk_test_Abc000000000000000000000000", False),
        ("rk_test_Abc000000000000000000000000", False),
        ("sk_live_Abc000000000000000000000000", True),
        ("rk_live_Abc000000000000000000000000", True),
    ],
)
def test_stripe_mode_follows_the_key_prefix(key, live):
    values = settings_in({"STRIPE_SECRET_KEY": key}, "STRIPE_LIVE_MODE")
    assert values["STRIPE_LIVE_MODE"] is live


def test_an_unrecognised_stripe_key_stops_startup_with_a_clear_error():
    result = run_django("", {"STRIPE_SECRET_KEY": "pk_live_publishable"})
    assert result.returncode != 0
    assert "STRIPE_SECRET_KEY must start with sk_test_, rk_test_, sk_live_ or rk_live_" in (
        result.stderr
    )


def test_production_refuses_to_start_without_its_secrets():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "STRIPE_WEBHOOK_SECRET"}
    result = run_django("", env)
    assert result.returncode != 0
    assert "STRIPE_WEBHOOK_SECRET" in result.stderr


def test_embedded_defaults_without_any_variables():
    values = settings_in(
        {}, "DATABASES", "STORAGES", "EMAIL_BACKEND", "DEBUG", "LEGACY_DATABASE_WRITABLE"
    )
    assert values["DEBUG"] is True
    for alias in ("default", "legacy"):
        database = values["DATABASES"][alias]
        assert database["ENGINE"] == "django.db.backends.sqlite3"
        assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]
        assert database["OPTIONS"]["timeout"] >= 5
    assert values["DATABASES"]["default"]["NAME"] != values["DATABASES"]["legacy"]["NAME"]
    assert values["STORAGES"]["default"]["BACKEND"].endswith("FileSystemStorage")
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert values["LEGACY_DATABASE_WRITABLE"] is True


def test_embedded_sqlite_really_runs_in_wal_mode(tmp_path):
    db = tmp_path / "probe.sqlite3"
    script = (
        "from django.db import connection\n"
        "c=connection.cursor();c.execute('PRAGMA journal_mode');print(c.fetchone()[0])"
    )
    result = run_django(script, {"DATABASE_URL": f"sqlite:///{db}"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "wal"


def test_log_lines_are_json_objects():
    script = "import logging;logging.getLogger('billing.test').warning('hello', extra={'k': 1})"
    result = run_django(script, {})
    assert result.returncode == 0, result.stderr[-2000:]
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello"
    assert line["level"] == "WARNING"
    assert line["k"] == 1
