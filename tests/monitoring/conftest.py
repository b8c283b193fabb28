"""Fixtures of the monitoring tests: the delivery tests' real receivers and workers."""

from tests.deliveries.conftest import beat_loop, receiver, worker, worker_factory  # noqa: F401
