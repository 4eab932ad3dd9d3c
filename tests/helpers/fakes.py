"""A provider boundary fake: the contract's abstract hooks filled in, for tests that need only
a poll, a few steps or a convergence reading (they override what they use)."""

from __future__ import annotations

from fleetview.providers.base import Provider


class StubProvider(Provider):
    """Acts as `actor`; plans nothing and runs no step unless a subclass says how."""

    actor = "ops"

    def identity(self) -> str:
        return self.actor

    def poll(self):
        raise NotImplementedError("this fake has no fleet")

    def plan_replace_of(self, inventory, instance, group, **options):
        raise NotImplementedError("this fake plans nothing")

    def plan_rollback_of(self, inventory, group, version, known_images, **options):
        raise NotImplementedError("this fake plans nothing")

    def run_step(self, plan, step):
        raise NotImplementedError("this fake runs no step")
        yield  # pragma: no cover - a generator, like every step runner
