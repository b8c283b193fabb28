"""Destination templates: pre-filled destinations for well-known services.

A template names its destination ``type``, a ``config_template`` shaped like the body of
``POST /v1/destinations`` (empty strings are what the user must fill in, other values are
defaults), and optionally a *body shape*: a function turning the event payload into the
body that service expects (Slack wants ``{"text": …}``, PagerDuty an Events v2 event).
The HTTP provider calls :func:`shape_body` for every delivery of a templated destination.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Shapes get the payload, the event id, the destination name and the destination's
# (decrypted) provider_config.
Shape = Callable[..., dict]

# How much of the payload a chat message quotes; chat services truncate or refuse long bodies.
_QUOTE_CHARS = 1500


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    type: str
    description: str
    config_template: dict = field(default_factory=dict)
    shape: Shape | None = None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "config_template": json.loads(json.dumps(self.config_template)),
            "shapes_body": self.shape is not None,
        }


# --- body shapes ------------------------------------------------------------------------


def _event_type(payload: Any) -> str:
    if isinstance(payload, dict):
        for key in ("type", "event_type", "event", "action", "topic"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
    return "event"


def _quote(payload: Any) -> str:
    text = "(no JSON body)" if payload is None else json.dumps(payload, indent=2, sort_keys=True, default=str)
    if len(text) > _QUOTE_CHARS:
        text = text[:_QUOTE_CHARS] + "\n…"
    return text


def _title(payload: Any, event_id: str, destination_name: str) -> str:
    prefix = f"[{destination_name}] " if destination_name else ""
    return f"{prefix}{_event_type(payload)} ({event_id})"


def _chat_text(payload: Any, event_id: str, destination_name: str) -> str:
    return f"{_title(payload, event_id, destination_name)}\n```\n{_quote(payload)}\n```"


def _text_shape(*, payload, event_id, destination_name="", config=None) -> dict:
    return {"text": _chat_text(payload, event_id, destination_name)}


def _discord_shape(*, payload, event_id, destination_name="", config=None) -> dict:
    # Discord refuses content longer than 2000 characters.
    return {"content": _chat_text(payload, event_id, destination_name)[:2000]}


def _teams_shape(*, payload, event_id, destination_name="", config=None) -> dict:
    # Teams Workflows ("Post to a channel when a webhook request is received") take an
    # Adaptive Card attachment; the retired O365 connectors took the same envelope.
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": _title(payload, event_id, destination_name),
                "weight": "Bolder",
                "wrap": True,
            },
            {"type": "TextBlock", "text": _quote(payload), "fontType": "Monospace", "wrap": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


_PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")


def _pagerduty_shape(*, payload, event_id, destination_name="", config=None) -> dict:
    config = config or {}
    severity = payload.get("severity") if isinstance(payload, dict) else None
    if severity not in _PAGERDUTY_SEVERITIES:
        severity = "error"
    return {
        "routing_key": config.get("routing_key", ""),
        "event_action": "trigger",
        # The event id: PagerDuty folds retries of one event into one alert.
        "dedup_key": event_id,
        "payload": {
            "summary": _title(payload, event_id, destination_name)[:1024],
            "source": destination_name or "hookstream",
            "severity": severity,
            "custom_details": payload if isinstance(payload, dict) else {"body": payload},
        },
    }


def _datadog_shape(*, payload, event_id, destination_name="", config=None) -> dict:
    return {
        "title": _title(payload, event_id, destination_name)[:100],
        "text": _quote(payload),
        "alert_type": "info",
        "source_type_name": "hookstream",
        "aggregation_key": event_id,
        "tags": ["source:hookstream", f"event_type:{_event_type(payload)}"],
    }


def _opsgenie_shape(*, payload, event_id, destination_name="", config=None) -> dict:
    return {
        # Opsgenie limits message to 130 characters and description to 15000.
        "message": _title(payload, event_id, destination_name)[:130],
        "alias": event_id,
        "description": _quote(payload)[:15000],
        "source": "hookstream",
        "details": {"event_id": event_id, "destination": destination_name},
    }


# --- the catalog --------------------------------------------------------------------------

_AWS_KEYS = {"access_key_id": "", "secret_access_key": ""}

TEMPLATES: tuple[Template, ...] = (
    Template(
        id="slack",
        name="Slack",
        type="http",
        description="Send webhook events to a Slack channel via Incoming Webhook URL.",
        config_template={"url": ""},
        shape=_text_shape,
    ),
    Template(
        id="discord",
        name="Discord",
        type="http",
        description="Post webhook events to a Discord channel webhook.",
        config_template={"url": ""},
        shape=_discord_shape,
    ),
    Template(
        id="pagerduty",
        name="PagerDuty",
        type="http",
        description="Trigger PagerDuty incidents through the Events API v2 (routing_key = integration key).",
        config_template={"url": "https://events.pagerduty.com/v2/enqueue", "provider_config": {"routing_key": ""}},
        shape=_pagerduty_shape,
    ),
    Template(
        id="microsoft_teams",
        name="Microsoft Teams",
        type="http",
        description="Post an Adaptive Card to a Microsoft Teams channel through a Workflows webhook URL.",
        config_template={"url": ""},
        shape=_teams_shape,
    ),
    Template(
        id="google_chat",
        name="Google Chat",
        type="http",
        description="Post messages to a Google Chat space through its incoming webhook URL.",
        config_template={"url": ""},
        shape=_text_shape,
    ),
    Template(
        id="mattermost",
        name="Mattermost",
        type="http",
        description="Post messages to a Mattermost channel through an incoming webhook URL.",
        config_template={"url": ""},
        shape=_text_shape,
    ),
    Template(
        id="datadog",
        name="Datadog",
        type="http",
        description="Create Datadog events (Events API); api_key is your Datadog API key. Use your site's host.",
        config_template={
            "url": "https://api.datadoghq.com/api/v1/events",
            "provider_config": {"auth_type": "api_key", "api_key_header": "DD-API-KEY", "api_key": ""},
        },
        shape=_datadog_shape,
    ),
    Template(
        id="opsgenie",
        name="Opsgenie",
        type="http",
        description='Create Opsgenie alerts (Alert API v2); api_key is "GenieKey <your API integration key>".',
        config_template={
            "url": "https://api.opsgenie.com/v2/alerts",
            "provider_config": {"auth_type": "api_key", "api_key_header": "Authorization", "api_key": ""},
        },
        shape=_opsgenie_shape,
    ),
    Template(
        id="aws_sqs",
        name="AWS SQS",
        type="sqs",
        description="Send each event as a message to an SQS queue (FIFO queues are deduplicated by event id).",
        config_template={"provider_config": {"queue_url": "", "region": "", **_AWS_KEYS}},
    ),
    Template(
        id="aws_s3",
        name="AWS S3",
        type="s3",
        description="Archive each event as an object under {prefix}YYYY/MM/DD/{event_id}.json.",
        config_template={
            "provider_config": {"bucket": "", "region": "", "prefix": "events/", "format": "json", **_AWS_KEYS}
        },
    ),
    Template(
        id="aws_eventbridge",
        name="AWS EventBridge",
        type="eventbridge",
        description="Put each event on an EventBridge bus (Detail = the event body).",
        config_template={
            "provider_config": {
                "event_bus_arn": "default",
                "region": "",
                "source": "hookstream",
                "detail_type": "hookstream.event",
                **_AWS_KEYS,
            }
        },
    ),
    Template(
        id="gcp_pubsub",
        name="Google Cloud Pub/Sub",
        type="pubsub",
        description="Publish each event to a Pub/Sub topic with a service account.",
        config_template={"provider_config": {"project_id": "", "topic_id": "", "service_account_json": ""}},
    ),
    Template(
        id="kafka",
        name="Kafka (Confluent REST Proxy)",
        type="kafka",
        description="Produce each event to a Kafka topic through the Confluent REST Proxy v3.",
        config_template={
            "provider_config": {"rest_url": "", "cluster_id": "", "topic": "", "api_key": "", "api_secret": ""}
        },
    ),
    Template(
        id="rabbitmq",
        name="RabbitMQ",
        type="rabbitmq",
        description="Publish each event to a RabbitMQ exchange through the HTTP Management API.",
        config_template={
            "provider_config": {
                "url": "",
                "vhost": "/",
                "exchange": "",
                "routing_key": "",
                "username": "",
                "password": "",
            }
        },
    ),
    Template(
        id="websocket",
        name="WebSocket",
        type="websocket",
        description="Push each event as a JSON frame to a WebSocket server (ws:// or wss://).",
        config_template={"url": "", "provider_config": {"channel_name": ""}},
    ),
)

_BY_ID = {template.id: template for template in TEMPLATES}

# Placeholders a template leaves optional although they are empty (RabbitMQ's default
# routing key is legitimately "").
_OPTIONAL_PLACEHOLDERS = {("rabbitmq", "routing_key")}


def all_templates() -> tuple[Template, ...]:
    return TEMPLATES


def get_template(template_id: str) -> Template | None:
    return _BY_ID.get(template_id)


def template_defaults(template: Template) -> dict:
    """The ``config_template`` without its empty placeholders: what a new destination starts from."""
    defaults: dict = {}
    for key, value in template.config_template.items():
        if isinstance(value, dict):
            filled = {k: v for k, v in value.items() if v != ""}
            if filled:
                defaults[key] = filled
        elif value != "":
            defaults[key] = value
    return defaults


def template_placeholders(template: Template) -> list[tuple[str, ...]]:
    """The paths (``("url",)``, ``("provider_config", "routing_key")``) the user must fill in."""
    paths: list[tuple[str, ...]] = []
    for key, value in template.config_template.items():
        if isinstance(value, dict):
            paths.extend(
                (key, sub)
                for sub, sub_value in value.items()
                if sub_value == "" and (template.id, sub) not in _OPTIONAL_PLACEHOLDERS
            )
        elif value == "":
            paths.append((key,))
    return paths


def shape_body(
    template_id: str, *, payload: Any, event_id: str, destination_name: str = "", config: dict | None = None
) -> dict | None:
    """The body a templated destination receives instead of the raw event, or None to send the
    event unchanged (no template, unknown template, or a template without a shape).

    ``config`` is the destination's decrypted ``provider_config``; PagerDuty takes its
    ``routing_key`` from it.
    """
    template = _BY_ID.get(template_id or "")
    if template is None or template.shape is None:
        return None
    return template.shape(payload=payload, event_id=event_id, destination_name=destination_name, config=config)
