"""The provider plug-in: a destination type is one module that registers a ``Provider``.

The throwaway type below is what README's "Adding a destination type" shows; it is
registered for one test and unregistered afterwards, and nothing else is edited for it:
no enum, no migration, no special case in the services or the console.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from deliveries.engine import process_delivery
from deliveries.models import DeliveryAttempt
from destinations.models import Destination
from destinations.providers import (
    REGISTRY,
    ConfigError,
    ConfigField,
    OutboundMessage,
    Outcome,
    Provider,
    register,
    unregister,
)
from hookstream import crypto
from tests.destinations.helpers import assert_error_body, post_json
from tests.factories import make_delivery, make_event


class NotebookProvider(Provider):
    """Writes each event into a list: a destination type that needs no counterpart."""

    type = "notebook"
    label = "Notebook"
    description = "Write each event down (a test type)."
    fields = (
        ConfigField("page", required=True),
        ConfigField("ink", secret=True),
    )
    written: ClassVar[list[tuple[str, str, bytes]]] = []

    @classmethod
    def clean(cls, config, *, url=""):
        if not config["page"].isalnum():
            raise ConfigError({"provider_config.page": ["Letters and digits only."]})
        return config

    def send(self, destination, message: OutboundMessage) -> Outcome:
        config = destination.provider_config
        self.written.append((config["page"], config["ink"], message.body))
        return Outcome.success(request_url=f"notebook:{config['page']}", request_method="WRITE")


@pytest.fixture
def notebook():
    register(NotebookProvider)
    NotebookProvider.written.clear()
    yield NotebookProvider
    unregister(NotebookProvider.type)


def test_it_creates_and_delivers_to_a_type_registered_by_one_module(alice, api, notebook):
    response = post_json(
        api,
        "/v1/destinations",
        {"name": "Notes", "type": "notebook", "provider_config": {"page": "p1", "ink": "blue-ink"}},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["type"] == "notebook" and body["url"] == ""
    assert body["provider_config"] == {"page": "p1", "ink": "****-ink"}
    row = Destination.objects.get(pk=body["id"])
    assert row.provider_config["ink"] != "blue-ink"  # the declared secret is encrypted at rest
    assert crypto.decrypt_fields(row.provider_config, ("ink",))["ink"] == "blue-ink"

    delivery = make_delivery(make_event(alice.org, {"type": "order.created"}), row)
    process_delivery(delivery.id)

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert notebook.written == [("p1", "blue-ink", delivery.event.body)]
    assert DeliveryAttempt.objects.get(delivery=delivery).request_url == "notebook:p1"


def test_it_applies_the_new_types_own_rules(api, notebook):
    missing = post_json(api, "/v1/destinations", {"name": "Notes", "type": "notebook"})
    assert_error_body(missing, 400, "provider_config.page")

    bad = post_json(api, "/v1/destinations", {"name": "Notes", "type": "notebook", "provider_config": {"page": "a b"}})
    assert_error_body(bad, 400, "provider_config.page")

    with_url = post_json(
        api,
        "/v1/destinations",
        {"name": "Notes", "type": "notebook", "url": "https://example.com/", "provider_config": {"page": "p"}},
    )
    assert_error_body(with_url, 400, "url")

    signed = post_json(
        api,
        "/v1/destinations",
        {"name": "Notes", "type": "notebook", "provider_config": {"page": "p"}, "signing_config": {"secret": "s"}},
    )
    assert_error_body(signed, 400, "signing_config")


def test_an_unregistered_type_is_refused_again(api):
    assert "notebook" not in REGISTRY

    response = post_json(
        api, "/v1/destinations", {"name": "Notes", "type": "notebook", "provider_config": {"page": "p"}}
    )

    assert_error_body(response, 400, "type")
