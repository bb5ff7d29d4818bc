"""The demo registry: each app contributes steps to `billing_demo` from its own `demo.py`.

Steps run in ascending `order`; each receives the shared `DemoContext` and returns a one-line
summary. Steps must be idempotent: running the demo twice leaves the same data.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.utils.module_loading import autodiscover_modules


@dataclass
class DemoContext:
    seed: int = 2026
    accounts: int = 30
    months: int = 14
    today: date = field(default_factory=date.today)
    rng: random.Random = field(init=False)
    shared: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


@dataclass(frozen=True)
class DemoStep:
    order: int
    name: str
    run: Callable[[DemoContext], str]


_STEPS: dict[str, DemoStep] = {}


def demo_step(order: int, name: str) -> Callable:
    """Decorator registering a demo step."""

    def register(func: Callable[[DemoContext], str]) -> Callable[[DemoContext], str]:
        _STEPS[name] = DemoStep(order=order, name=name, run=func)
        return func

    return register


def demo_steps() -> list[DemoStep]:
    autodiscover_modules("demo")
    return sorted(_STEPS.values(), key=lambda step: (step.order, step.name))
