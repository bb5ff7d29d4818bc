"""The web's settings in the delivery benchmark: the app's own, plus dj-stripe's stock webhook
view routed at `/bench/djstripe/webhook/<uuid>/`, so its ack latency is measured beside ours
in the same run (the app itself routes only its own intake)."""

from billing_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.delivery.urls"
