import pytest
from rest_framework.test import APIClient

from hookstream import services as tenancy
from tests.support import StreamServer


@pytest.fixture
def alice(db):
    """Organization "alice" with an owner user and an API key."""
    return _make_org("alice")


@pytest.fixture
def bob(db):
    """Organization "bob": the other tenant in isolation checks."""
    return _make_org("bob")


class Tenant:
    def __init__(self, org, user, key, raw_key):
        self.org = org
        self.user = user
        self.key = key
        self.raw_key = raw_key

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=self.raw_key)
        return client

    def session_client(self, enforce_csrf: bool = False) -> APIClient:
        client = APIClient(enforce_csrf_checks=enforce_csrf)
        client.force_login(self.user)
        return client


def _make_org(name: str) -> Tenant:
    org = tenancy.organization_create(name=name.capitalize(), slug=name)
    user = tenancy.user_create(username=name, password=f"{name}-password-123", organization=org)
    key, raw = tenancy.api_key_create(organization=org, name=f"{name} key")
    return Tenant(org, user, key, raw)


@pytest.fixture
def api(alice) -> APIClient:
    """An API client authenticated as alice with her API key."""
    return alice.client()


def pytest_terminal_summary(terminalreporter):
    """One line naming what was skipped and why (a missing service, usually), so that a run
    on a laptop says plainly what it did not exercise."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    summary = "; ".join(f"{reason} ({count})" for reason, count in sorted(reasons.items(), key=lambda r: -r[1]))
    terminalreporter.write_line(f"skipped {len(skipped)}: {summary}")


@pytest.fixture
def stream_server(transactional_db, settings):
    """A running stream process (``/v1/ws``); the console is told its port."""
    server = StreamServer().start()
    settings.HOOKSTREAM_STREAM_PORT = server.port
    yield server
    server.stop()
