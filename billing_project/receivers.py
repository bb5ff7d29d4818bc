"""Signal receivers of the shared core (connected in `CoreConfig.ready`)."""

from django.dispatch import receiver
from django_q.signals import post_spawn

from .tasks import worker_heartbeat_task


@receiver(post_spawn, dispatch_uid="billing_worker_heartbeat_on_spawn")
def heartbeat_on_worker_spawn(sender, proc_name, **kwargs) -> None:
    """A worker that just started is alive: /healthz need not wait for the first schedule."""
    worker_heartbeat_task()
