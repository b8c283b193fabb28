"""The private stack the fault tests break: one per module, torn down at its end."""

from __future__ import annotations

import pytest

from tests.deliveries.receiver import Receiver
from tests.faults.stack import Stack, postgres_available, redis_available
from tests.support import require_service


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def stack(receiver):
    require_service(
        "PostgreSQL server binaries (initdb, pg_ctl)",
        postgres_available(),
        "install postgresql; as root the postgres user and runuser are needed too",
    )
    require_service("redis-server", redis_available(), "install redis-server")
    stack = Stack.create()
    try:
        stack.up(receiver.url)
    except BaseException:
        print(stack.logs())
        stack.down()
        raise
    yield stack
    stack.down()
