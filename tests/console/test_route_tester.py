"""Console: "Test against an event" — a route's filter rules and transform tried on an event of
the organization (or a pasted body) before saving, the transform in the delivery sandbox."""

from __future__ import annotations

import json

from django.test import Client
from django.urls import reverse

from deliveries.models import Delivery
from intake.models import Connection, Subscription, Topic
from tests.console.test_destinations import _client
from tests.factories import make_destination, make_event, make_source

TEST_URL = "/route-test/"
RULES = json.dumps([{"field": "payload.type", "op": "eq", "value": "order.created"}])


def _post(client, *, fragment: bool = True, **data):
    headers = {"HTTP_X_REQUESTED_WITH": "fetch"} if fragment else {}
    return client.post(reverse("console:route-test"), data, **headers)


def test_it_matches_the_rules_and_runs_the_transform_on_an_event(alice):
    source = make_source(alice.org)
    event = make_event(alice.org, {"type": "order.created", "id": 7, "amount": 12.5}, source=source)
    response = _post(
        _client(alice),
        filter_rules=RULES,
        transform_expression='{"order": id, "total": amount}',
        test_event_id=event.pk,
        source_id=source.pk,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # a fragment for forms.js
    assert 'data-verdict="match"' in html and "this event would be delivered" in html
    assert "&quot;order.created&quot;" in html  # what the rule found
    assert "&quot;order&quot;: 7" in html and "&quot;total&quot;: 12.5" in html
    assert event.pk in html
    assert not Delivery.objects.exists()  # nothing sent


def test_it_says_which_rule_does_not_match(alice):
    event = make_event(alice.org, {"type": "order.refunded"})
    rules = json.dumps(
        [
            {"field": "payload.type", "op": "eq", "value": "order.created"},
            {"field": "method", "op": "eq", "value": "POST"},
        ]
    )
    response = _post(_client(alice), filter_rules=rules, test_event_id=event.pk)
    result = response.context["result"]
    assert result.matched is False
    assert [outcome.matched for outcome in result.rules] == [False, True]
    assert result.rules[0].found == "order.refunded"
    html = response.content.decode()
    assert 'data-verdict="no-match"' in html and "does not match" in html
    assert "No transform: the body is delivered as received." in html


def test_a_failing_transform_shows_its_error(alice):
    event = make_event(alice.org, {"type": "order.created", "items": [1, 2]})
    response = _post(_client(alice), transform_expression="items", test_event_id=event.pk)
    html = response.content.decode()
    assert 'data-transform="error"' in html
    assert "transform failed: the transform must produce a JSON object, it produced an array" in html
    assert "transform failed)" in html  # the dead-letter reason a delivery would get


def test_a_runaway_transform_is_stopped_by_the_sandbox(alice):
    event = make_event(alice.org, {"n": 1})
    endless = '($f := function($n) { $f($n + 1) }; {"x": $f(0)})'
    response = _post(_client(alice), transform_expression=endless, test_event_id=event.pk)
    result = response.context["result"]
    assert result.output is None and result.transform_error
    assert result.transform_error in response.content.decode().replace("&#x27;", "'")


def test_a_pasted_body_is_tried_as_a_json_post(alice):
    response = _post(
        _client(alice),
        filter_rules=json.dumps([{"field": "content_type", "op": "eq", "value": "application/json"}]),
        transform_expression='{"kind": type}',
        test_payload='{"type": "ping"}',
    )
    html = response.content.decode()
    assert "the pasted JSON body" in html and 'data-verdict="match"' in html
    assert "&quot;kind&quot;: &quot;ping&quot;" in html


def test_bad_input_is_reported_not_evaluated(alice):
    client = _client(alice)
    response = _post(client, filter_rules="[{", test_payload="{nope")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Not tested" in html and "Not valid JSON" in html
    response = _post(client, filter_rules="[]")
    assert "Choose an event or paste a JSON body." in response.content.decode()
    response = _post(client, filter_rules=json.dumps([{"field": "nowhere", "op": "eq", "value": 1}]), test_payload="{}")
    assert 'data-verdict="invalid"' in response.content.decode()


def test_another_organizations_event_is_a_404(alice, bob):
    event = make_event(bob.org, {"type": "secret.thing", "card": "4242"})
    client = _client(alice)
    response = _post(client, transform_expression='{"card": card}', test_event_id=event.pk)
    assert response.status_code == 404
    assert "4242" not in response.content.decode()
    assert _post(client, test_event_id="evt_\x00bad").status_code == 400


def test_it_needs_a_login_and_the_csrf_token(alice):
    event = make_event(alice.org)
    assert Client().post(TEST_URL, {"test_event_id": event.pk}).status_code == 302
    assert _client(alice, csrf=True).post(TEST_URL, {"test_event_id": event.pk}).status_code == 403


def test_without_javascript_the_answer_is_a_page_with_the_tester_filled_in(alice):
    event = make_event(alice.org, {"type": "order.created"})
    response = _post(
        _client(alice),
        fragment=False,
        filter_rules=RULES,
        transform_expression='{"t": type}',
        test_event_id=event.pk,
        next="/connections/new/",
        name="ignored field of the connection form",
    )
    html = response.content.decode()
    assert "<html" in html and "Test against an event" in html
    assert 'data-verdict="match"' in html
    assert 'href="/connections/new/">Back to the form' in html
    assert "order.created" in html and "{&quot;t&quot;: type}" in html  # the tester, filled in


def test_the_connection_form_offers_the_recent_events_of_its_source(alice):
    source, other = make_source(alice.org, name="Shop"), make_source(alice.org)
    mine = make_event(alice.org, {"type": "order.created"}, source=source)
    theirs = make_event(alice.org, source=other)
    client = _client(alice)
    html = client.get(reverse("console:connection-create") + f"?source_id={source.pk}").content.decode()
    assert "Test against an event" in html and 'formaction="/route-test/"' in html
    assert f'<option value="{mine.pk}">{mine.pk} · order.created · ' in html
    assert theirs.pk not in html
    # The picker's options for another source (fetched by forms.js when the source changes).
    options = client.get(reverse("console:route-test-events") + f"?source_id={other.pk}").content.decode()
    assert theirs.pk in options and mine.pk not in options


def test_the_topic_page_tests_against_the_topics_events(alice, bob):
    topic = Topic.objects.create(organization=alice.org, name="Orders", slug="orders")
    published = make_event(alice.org, {"type": "order.created"}, topic=topic)
    foreign = make_event(bob.org)
    html = _client(alice).get(reverse("console:topic-detail", args=[topic.pk])).content.decode()
    assert published.pk in html and foreign.pk not in html
    assert f'name="topic_id" value="{topic.pk}"' in html


def test_a_saved_route_opens_the_tester_filled_in(alice, bob):
    source = make_source(alice.org)
    destination = make_destination(alice.org)
    connection = Connection.objects.create(
        organization=alice.org,
        source=source,
        destination=destination,
        filter_rules=[{"field": "payload.type", "op": "eq", "value": "order.created"}],
        transform_expression='{"id": id}',
    )
    client = _client(alice)
    listing = client.get(reverse("console:connection-list")).content.decode()
    assert f"/route-test/?connection_id={connection.pk}" in listing
    page = client.get(TEST_URL + f"?connection_id={connection.pk}")
    assert page.context["tester"].initial["transform_expression"] == '{"id": id}'
    topic = Topic.objects.create(organization=alice.org, name="T", slug="t")
    subscription = Subscription.objects.create(organization=alice.org, topic=topic, destination=destination)
    assert client.get(TEST_URL + f"?topic_id={topic.pk}&subscription_id={subscription.pk}").status_code == 200
    # Another organization's route is a 404.
    assert _client(bob).get(TEST_URL + f"?connection_id={connection.pk}").status_code == 404
