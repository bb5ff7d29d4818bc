"""Test environment, set before Django reads its settings (loaded with `-p tests.plugin`).

Tests run on the real protocols: PostgreSQL, SeaweedFS's S3 server, a Mailgun-compatible
server and the Stripe-compatible server. Their addresses are chosen here (free loopback ports)
so the one settings module configures every client; the session fixtures start the servers on
those ports and stop them at the end.
"""

import os
import socket


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port(name: str) -> int:
    # Under pytest-xdist each worker process runs its own servers (and its own test
    # databases, which pytest-django suffixes): ports inherited from the controller are not
    # reused.
    if os.environ.get("PYTEST_XDIST_WORKER") or not os.environ.get(name):
        os.environ[name] = str(_free_port())
    return int(os.environ[name])


STRIPE_PORT = _port("HARNESS_STRIPE_PORT")
MAILGUN_PORT = _port("HARNESS_MAILGUN_PORT")
S3_PORT = _port("HARNESS_S3_PORT")

TEST_ENV = {
    "DJANGO_DEBUG": "true",
    "LEGACY_DATABASE_WRITABLE": "true",
    "Q_SYNC": "true",
    "STRIPE_SECRET_KEY": "sk_test_Harness000000000000000000000000",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_harness_secret",
    "STRIPE_API_BASE": f"http://127.0.0.1:{STRIPE_PORT}",
    # The local server answers in microseconds; pacing is tested on its own.
    "STRIPE_REQUESTS_PER_SECOND": "0",
    "STRIPE_CALLS_IN_TRANSACTION": "refuse",
    "MAILGUN_API_KEY": "key-harness-0000000000000000",
    "MAILGUN_DOMAIN": "notify.adventive.com",
    "MAILGUN_API_URL": f"http://127.0.0.1:{MAILGUN_PORT}/v3",
    "MAILGUN_WEBHOOK_SIGNING_KEY": "harness-webhook-signing-key",
    "BILLING_FROM_EMAIL": "billing-noreply@notify.adventive.com",
    "BILLING_BCC_ADDRESS": "2658568@bcc.hubspot.com",
    "R2_INVOICE_BUCKET": "invoices-test",
    "R2_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
    "R2_ACCESS_KEY_ID": "harness-access-key",
    "R2_SECRET_ACCESS_KEY": "harness-secret-key-0000000000000000",
    "SLACK_ALERTS_WEBHOOK_URL": "",
    "SLACK_BILLING_ALERTS_WEBHOOK_URL": "",
    "BILLING_ALERT_EMAILS": "",
}
os.environ.update(TEST_ENV)
# The database may be pointed elsewhere; by default it is the local PostgreSQL server.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing")
os.environ.setdefault("LEGACY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing_legacy")
