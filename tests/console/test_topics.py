"""Console: topics — list with publish URLs, create/edit/delete, subscriptions added and
removed through the service, isolation, CSRF and escaping."""

import json

import pytest

from intake.models import Subscription, Topic
from tests.console.test_events import XSS, XSS_ESCAPED, client_for
from tests.factories import make_destination


@pytest.fixture
def topic(alice):
    return Topic.objects.create(organization=alice.org, name="Orders", slug="orders")


def test_the_list_and_detail_show_the_publish_url(alice, topic, settings):
    settings.HOOKSTREAM_PUBLIC_URL = "https://hooks.example.com"
    client = client_for(alice)
    url = "https://hooks.example.com/v1/topics/orders/publish"
    listed = client.get("/topics/").content.decode()
    assert f'value="{url}" readonly' in listed and "Orders" in listed
    detail = client.get(f"/topics/{topic.pk}/").content.decode()
    assert f'value="{url}" readonly' in detail and 'data-copy="#publish-url"' in detail


def test_it_creates_and_edits_a_topic(alice):
    client = client_for(alice)
    response = client.post("/topics/new/", {"name": "User signups", "description": "from the app"})
    topic = Topic.objects.get(organization=alice.org)
    assert response.status_code == 302 and response["Location"] == f"/topics/{topic.pk}/"
    assert topic.slug == "user-signups"

    response = client.post(f"/topics/{topic.pk}/edit/", {"name": "Signups", "slug": "signups", "description": ""})
    assert response.status_code == 302
    topic.refresh_from_db()
    assert (topic.name, topic.slug, topic.description) == ("Signups", "signups", "")


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"name": ""}, "name", "This field is required."),
        ({"name": "   "}, "name", "This field is required."),
        ({"name": "ok", "slug": "No Spaces"}, "slug", "Must match"),
        ({"name": "ok", "slug": "orders"}, "slug", "already exists"),
    ],
)
def test_bad_input_is_shown_beside_the_field(alice, topic, fields, field, message):
    response = client_for(alice).post("/topics/new/", fields)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert Topic.objects.filter(organization=alice.org).count() == 1


def test_subscriptions_are_added_and_removed(alice, topic):
    destination = make_destination(alice.org, name="Mailer")
    client = client_for(alice)
    rules = [{"field": "payload.plan", "op": "in", "value": ["pro", "team"]}]
    response = client.post(
        f"/topics/{topic.pk}/subscriptions/",
        {"destination_id": destination.pk, "filter_rules": json.dumps(rules), "transform_expression": ""},
    )
    assert response.status_code == 302 and response["Location"] == f"/topics/{topic.pk}/"
    subscription = Subscription.objects.get(topic=topic)
    assert subscription.destination == destination and subscription.filter_rules == rules
    assert "Mailer" in client.get(f"/topics/{topic.pk}/").content.decode()

    twice = client.post(f"/topics/{topic.pk}/subscriptions/", {"destination_id": destination.pk})
    assert twice.status_code == 200
    assert "already subscribed" in twice.context["form"].errors["destination_id"][0]

    bad = client.post(
        f"/topics/{topic.pk}/subscriptions/",
        {"destination_id": make_destination(alice.org).pk, "transform_expression": "{{ broken"},
    )
    assert bad.status_code == 200 and "transform_expression" in bad.context["form"].errors
    assert Subscription.objects.filter(topic=topic).count() == 1

    path = f"/topics/{topic.pk}/subscriptions/{subscription.pk}/delete/"
    assert client.get(path).status_code == 200
    assert client.post(path).status_code == 302
    assert not Subscription.objects.filter(topic=topic).exists()


def test_delete_asks_first_then_deletes_with_subscriptions(alice, topic):
    Subscription.objects.create(organization=alice.org, topic=topic, destination=make_destination(alice.org))
    client = client_for(alice)
    confirm = client.get(f"/topics/{topic.pk}/delete/").content.decode()
    assert "1 subscription will be deleted" in confirm
    assert client.post(f"/topics/{topic.pk}/delete/")["Location"] == "/topics/"
    assert not Topic.objects.filter(pk=topic.pk).exists() and not Subscription.objects.exists()


def test_every_post_enforces_csrf(alice, topic):
    destination = make_destination(alice.org)
    subscription = Subscription.objects.create(organization=alice.org, topic=topic, destination=destination)
    client = client_for(alice, enforce_csrf=True)
    posts = [
        ("/topics/new/", {"name": "Sneaky"}),
        (f"/topics/{topic.pk}/edit/", {"name": "Changed"}),
        (f"/topics/{topic.pk}/delete/", {}),
        (f"/topics/{topic.pk}/subscriptions/", {"destination_id": make_destination(alice.org).pk}),
        (f"/topics/{topic.pk}/subscriptions/{subscription.pk}/delete/", {}),
    ]
    for path, data in posts:
        assert client.post(path, data).status_code == 403, path
    assert list(Topic.objects.values_list("name", flat=True)) == ["Orders"]
    assert list(Subscription.objects.values_list("pk", flat=True)) == [subscription.pk]


def test_another_organizations_ids_are_404s_and_nothing_changes(alice, bob, topic):
    destination = make_destination(alice.org)
    subscription = Subscription.objects.create(organization=alice.org, topic=topic, destination=destination)
    bob_topic = Topic.objects.create(organization=bob.org, name="Bob's", slug="bobs")
    client = client_for(bob)
    paths = [
        f"/topics/{topic.pk}/",
        f"/topics/{topic.pk}/edit/",
        f"/topics/{topic.pk}/delete/",
        f"/topics/{topic.pk}/subscriptions/{subscription.pk}/delete/",
        # Alice's subscription under Bob's own topic is not found either.
        f"/topics/{bob_topic.pk}/subscriptions/{subscription.pk}/delete/",
    ]
    for path in paths:
        assert client.get(path).status_code == 404, path
        assert client.post(path, {"name": "Bob's now"}).status_code == 404, path
    assert client.post(f"/topics/{topic.pk}/subscriptions/", {"destination_id": destination.pk}).status_code == 404
    # Alice's destination is not offered to Bob's topic.
    response = client.post(f"/topics/{bob_topic.pk}/subscriptions/", {"destination_id": destination.pk})
    assert "Select a valid choice" in response.content.decode()
    topic.refresh_from_db()
    assert topic.name == "Orders"
    assert list(Subscription.objects.values_list("pk", flat=True)) == [subscription.pk]


def test_user_values_are_escaped(alice):
    topic = Topic.objects.create(organization=alice.org, name=XSS, slug="xss", description=XSS)
    destination = make_destination(alice.org, name=XSS)
    subscription = Subscription.objects.create(
        organization=alice.org, topic=topic, destination=destination, transform_expression=XSS
    )
    client = client_for(alice)
    paths = [
        "/topics/",
        f"/topics/{topic.pk}/",
        f"/topics/{topic.pk}/edit/",
        f"/topics/{topic.pk}/delete/",
        f"/topics/{topic.pk}/subscriptions/{subscription.pk}/delete/",
    ]
    for path in paths:
        html = client.get(path).content.decode()
        assert XSS not in html, path
        assert XSS_ESCAPED in html, path
