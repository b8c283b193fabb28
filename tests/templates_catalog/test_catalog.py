"""The templates catalog: its contents, the body shapes, and creating destinations from it."""

import json

import pytest

from destinations import selectors
from destinations.models import Destination, DestinationType
from templates_catalog.catalog import TEMPLATES, get_template, shape_body, template_placeholders
from tests.destinations.helpers import assert_error_body, post_json

REQUIRED_HTTP = {"slack", "discord", "pagerduty", "microsoft_teams", "google_chat", "mattermost", "datadog", "opsgenie"}
PAYLOAD = {"type": "order.created", "id": 42, "severity": "warning", "amount": 1999}


def _filled(template) -> dict:
    """A create body that fills every placeholder of ``template`` with a plausible value."""
    body: dict = {"template": template.id}
    for path in template_placeholders(template):
        name = path[-1]
        if name == "url" and template.type == DestinationType.WEBSOCKET and len(path) == 1:
            value = "wss://ws.example.com/socket"
        elif name == "channel_name":
            value = "orders.v1"
        elif name.endswith("url"):
            value = "https://target.example.com/endpoint"
        else:
            value = f"value-of-{name}-1234"
        if len(path) == 1:
            body[name] = value
        else:
            body.setdefault(path[0], {})[name] = value
    return body


def test_it_has_every_required_template_and_one_per_non_http_type():
    ids = {template.id for template in TEMPLATES}
    assert REQUIRED_HTTP <= ids
    non_http_types = {template.type for template in TEMPLATES if template.type != DestinationType.HTTP}
    assert non_http_types == set(DestinationType.values) - {DestinationType.HTTP}
    assert len(ids) == len(TEMPLATES)


def test_it_lists_every_template_with_its_fields(api):
    templates = api.get("/v1/destinations/templates").json()["templates"]

    assert [t["id"] for t in templates] == [t.id for t in TEMPLATES]
    for template in templates:
        assert set(template) >= {"id", "name", "type", "description", "config_template"}
        assert template["type"] in DestinationType.values


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.id for t in TEMPLATES])
def test_it_creates_a_valid_destination_from_every_template(api, template):
    response = post_json(api, "/v1/destinations", _filled(template))

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["type"] == template.type
    assert created["template"] == template.id
    assert created["name"] == template.name


def test_it_fills_the_defaults_of_a_template(api):
    response = post_json(
        api,
        "/v1/destinations",
        {"template": "pagerduty", "name": "On call", "provider_config": {"routing_key": "R0UT1NGKEY42"}},
    )

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["url"] == "https://events.pagerduty.com/v2/enqueue"
    assert created["provider_config"]["routing_key"] == "****EY42"
    config = selectors.destination_provider_config(Destination.objects.get(pk=created["id"]))
    assert config["routing_key"] == "R0UT1NGKEY42"


def test_it_lets_the_caller_override_a_template_default(api):
    body = {"template": "datadog", "url": "https://api.datadoghq.eu/api/v1/events", "provider_config": {"api_key": "k"}}

    created = post_json(api, "/v1/destinations", body).json()

    assert created["url"] == "https://api.datadoghq.eu/api/v1/events"
    assert created["provider_config"]["api_key_header"] == "DD-API-KEY"


def test_it_names_the_placeholder_a_template_still_needs(api):
    response = post_json(api, "/v1/destinations", {"template": "pagerduty"})

    assert_error_body(response, 400, "provider_config.routing_key")


def test_it_needs_the_url_of_a_slack_template(api):
    response = post_json(api, "/v1/destinations", {"template": "slack"})

    assert_error_body(response, 400, "url")


def test_it_refuses_an_unknown_template(api):
    response = post_json(api, "/v1/destinations", {"template": "myspace", "name": "x"})

    body = assert_error_body(response, 400, "template")
    assert "myspace" in body["details"]["template"][0]


def test_it_refuses_a_type_that_contradicts_the_template(api):
    response = post_json(
        api, "/v1/destinations", {"template": "slack", "type": "sqs", "url": "https://hooks.slack.com/x"}
    )

    assert_error_body(response, 400, "type")


def test_it_refuses_a_patch_to_a_template_of_another_type(api):
    created = post_json(api, "/v1/destinations", {"template": "slack", "url": "https://hooks.slack.com/x"}).json()

    response = api.patch(f"/v1/destinations/{created['id']}", {"template": "aws_sqs"}, format="json")

    assert_error_body(response, 400, "template")


# --- body shapes --------------------------------------------------------------------------------


def test_it_shapes_a_slack_message():
    body = shape_body("slack", payload=PAYLOAD, event_id="evt_1", destination_name="Alerts")

    assert set(body) == {"text"}
    assert "order.created" in body["text"] and "evt_1" in body["text"] and "[Alerts]" in body["text"]
    assert '"amount": 1999' in body["text"]


def test_it_shapes_a_pagerduty_events_v2_trigger():
    body = shape_body(
        "pagerduty", payload=PAYLOAD, event_id="evt_1", destination_name="Checkout", config={"routing_key": "RK"}
    )

    assert body["routing_key"] == "RK"
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == "evt_1"
    assert body["payload"]["severity"] == "warning"
    assert body["payload"]["source"] == "Checkout"
    assert "order.created" in body["payload"]["summary"]
    assert body["payload"]["custom_details"] == PAYLOAD


def test_it_defaults_the_pagerduty_severity_to_error():
    body = shape_body("pagerduty", payload={"severity": "apocalyptic"}, event_id="evt_1")

    assert body["payload"]["severity"] == "error"
    assert body["payload"]["source"] == "hookstream"


def test_it_keeps_discord_content_under_2000_characters():
    body = shape_body("discord", payload={"blob": "x" * 10_000}, event_id="evt_1")

    assert len(body["content"]) <= 2000


@pytest.mark.parametrize("template_id", ["google_chat", "mattermost"])
def test_it_shapes_text_messages(template_id):
    assert "evt_1" in shape_body(template_id, payload=PAYLOAD, event_id="evt_1")["text"]


def test_it_shapes_a_teams_adaptive_card():
    body = shape_body("microsoft_teams", payload=PAYLOAD, event_id="evt_1")

    attachment = body["attachments"][0]
    assert body["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"


def test_it_shapes_datadog_and_opsgenie_bodies():
    datadog = shape_body("datadog", payload=PAYLOAD, event_id="evt_1")
    opsgenie = shape_body("opsgenie", payload=PAYLOAD, event_id="evt_1")

    assert datadog["title"] and datadog["aggregation_key"] == "evt_1"
    assert len(opsgenie["message"]) <= 130 and opsgenie["alias"] == "evt_1"


def test_it_shapes_a_body_that_is_not_json():
    body = shape_body("slack", payload=None, event_id="evt_1")

    assert "no JSON body" in body["text"]


@pytest.mark.parametrize("template_id", ["", "nope", "aws_sqs", "kafka", "websocket"])
def test_it_leaves_the_body_alone_without_a_shape(template_id):
    assert shape_body(template_id, payload=PAYLOAD, event_id="evt_1") is None


def test_every_shape_is_json_serializable():
    for template in TEMPLATES:
        body = shape_body(template.id, payload=PAYLOAD, event_id="evt_1", config={"routing_key": "k"})
        if template.shape is not None:
            json.dumps(body)
    assert get_template("slack").shape is not None
