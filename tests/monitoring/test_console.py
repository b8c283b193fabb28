"""The console's Issues pages: list, detail, acknowledge / resolve / reopen / retry."""

from __future__ import annotations

from monitoring import services
from monitoring.models import Issue
from tests.factories import make_destination


def _issue(tenant, name="Billing", kind="http_5xx"):
    destination = make_destination(tenant.org, name=name)
    issue, _ = services.issue_record(
        organization_id=tenant.org.id, destination_id=destination.id, error_type=kind, message="HTTP 503: down"
    )
    return issue


def test_it_lists_open_issues_with_a_nav_link(alice, bob):
    mine = _issue(alice)
    _issue(bob, name="Bob's API")
    client = alice.session_client()

    page = client.get("/issues/").content.decode()

    assert 'href="/issues/"' in page and ">Issues<" in page
    assert "Billing" in page and "http_5xx" in page and "HTTP 503: down" in page and f"/issues/{mine.id}/" in page
    assert "Bob's API" not in page
    assert "No resolved issues" in client.get("/issues/?status=resolved").content.decode()


def test_it_acknowledges_resolves_and_reopens_from_the_detail_page(alice, bob):
    issue = _issue(alice)
    client = alice.session_client()
    url = f"/issues/{issue.id}/"

    assert "Acknowledge" in client.get(url).content.decode()
    client.post(f"{url}action/", {"action": "acknowledge"})
    assert Issue.objects.get(pk=issue.id).status == "acknowledged"
    response = client.post(f"{url}action/", {"action": "resolve"}, follow=True)
    assert Issue.objects.get(pk=issue.id).status == "resolved" and "Reopen" in response.content.decode()
    client.post(f"{url}action/", {"action": "reopen"})
    assert Issue.objects.get(pk=issue.id).status == "open"
    assert "Retried 0 deliveries" in client.post(f"{url}action/", {"action": "retry"}, follow=True).content.decode()
    assert bob.session_client().get(url).status_code == 404
    assert alice.client().get(url).status_code == 302  # an API key is not a console session
