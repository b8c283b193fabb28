"""Secrets in provider_config and signing_config: encrypted at rest, masked in every
response, kept when a PATCH echoes the mask."""

import json

from django.db import connection

from destinations import selectors
from destinations.models import Destination
from tests.destinations.helpers import assert_error_body, patch_json, post_json

SQS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
SIGNING_SECRET = "signing-secret-0f3c9a7e"
SQS = {
    "name": "Orders queue",
    "type": "sqs",
    "provider_config": {
        "queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
        "region": "eu-west-1",
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": SQS_SECRET,
        "session_token": "session-token-value-9876",
    },
}
HTTP_SIGNED = {
    "name": "Signed",
    "type": "http",
    "url": "https://hooks.example.com/in",
    "provider_config": {"auth_type": "bearer", "token": "bearer-token-abcd1234"},
    "signing_config": {"secret": SIGNING_SECRET, "include_timestamp": True},
}
PLAINTEXTS = [SQS_SECRET, "session-token-value-9876", SIGNING_SECRET, "bearer-token-abcd1234"]


def _raw_row(destination_id: str) -> str:
    """The stored row as text, read past the ORM."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM destinations_destination WHERE id = %s", [destination_id])
        return json.dumps([str(value) for value in cursor.fetchone()])


def _assert_no_plaintext(text: str):
    for secret in PLAINTEXTS:
        assert secret not in text


def test_it_never_stores_or_answers_a_secret_in_plaintext(api):
    responses = []
    sqs = post_json(api, "/v1/destinations", SQS)
    http = post_json(api, "/v1/destinations", HTTP_SIGNED)
    responses += [sqs, http]
    for created in (sqs.json(), http.json()):
        responses.append(api.get(f"/v1/destinations/{created['id']}"))
        responses.append(patch_json(api, f"/v1/destinations/{created['id']}", {"name": "renamed " + created["name"]}))
    responses.append(api.get("/v1/destinations"))

    for response in responses:
        assert response.status_code in (200, 201), response.content
        _assert_no_plaintext(response.content.decode())
    for created in (sqs.json(), http.json()):
        row = _raw_row(created["id"])
        _assert_no_plaintext(row)
        assert "enc:v1:" in row


def test_it_masks_secrets_to_their_last_four_characters(api):
    sqs = post_json(api, "/v1/destinations", SQS).json()
    http = post_json(api, "/v1/destinations", HTTP_SIGNED).json()

    assert sqs["provider_config"]["secret_access_key"] == "****EKEY"
    assert sqs["provider_config"]["session_token"] == "****9876"
    # Not secrets: shown as given.
    assert sqs["provider_config"]["access_key_id"] == "AKIAIOSFODNN7EXAMPLE"
    assert http["provider_config"]["token"] == "****1234"
    assert http["signing_config"]["secret"] == "****9a7e"
    assert http["signing_config"]["include_timestamp"] is True


def test_it_keeps_the_secret_when_a_patch_echoes_the_mask(api):
    created = post_json(api, "/v1/destinations", SQS).json()
    echoed = dict(created["provider_config"], region="us-east-1")

    response = patch_json(api, f"/v1/destinations/{created['id']}", {"provider_config": echoed})

    assert response.status_code == 200, response.content
    config = selectors.destination_provider_config(Destination.objects.get(pk=created["id"]))
    assert config["secret_access_key"] == SQS_SECRET
    assert config["session_token"] == "session-token-value-9876"
    assert config["region"] == "us-east-1"


def test_it_keeps_the_signing_secret_when_a_patch_echoes_the_whole_object(api):
    created = post_json(api, "/v1/destinations", HTTP_SIGNED).json()

    response = patch_json(api, f"/v1/destinations/{created['id']}", created)

    assert response.status_code == 200, response.content
    destination = Destination.objects.get(pk=created["id"])
    assert selectors.destination_signing_config(destination)["secret"] == SIGNING_SECRET
    assert selectors.destination_provider_config(destination)["token"] == "bearer-token-abcd1234"


def test_it_replaces_a_secret_sent_in_full(api):
    created = post_json(api, "/v1/destinations", SQS).json()

    response = patch_json(
        api, f"/v1/destinations/{created['id']}", {"provider_config": {"secret_access_key": "brand-new-secret-5555"}}
    )

    assert response.json()["provider_config"]["secret_access_key"] == "****5555"
    config = selectors.destination_provider_config(Destination.objects.get(pk=created["id"]))
    assert config["secret_access_key"] == "brand-new-secret-5555"
    assert "brand-new-secret-5555" not in _raw_row(created["id"])


def test_it_refuses_a_mask_that_does_not_match_the_stored_secret(api):
    created = post_json(api, "/v1/destinations", SQS).json()

    response = patch_json(
        api, f"/v1/destinations/{created['id']}", {"provider_config": {"secret_access_key": "****WXYZ"}}
    )

    assert_error_body(response, 400, "provider_config.secret_access_key")
    config = selectors.destination_provider_config(Destination.objects.get(pk=created["id"]))
    assert config["secret_access_key"] == SQS_SECRET


def test_it_encrypts_a_service_account_given_as_an_object(api):
    account = {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEv-secret\n"}
    body = {
        "name": "Pub/Sub",
        "type": "pubsub",
        "provider_config": {"project_id": "p", "topic_id": "t", "service_account_json": account},
    }

    created = post_json(api, "/v1/destinations", body)

    assert created.status_code == 201, created.content
    assert "MIIEv-secret" not in created.content.decode()
    assert "MIIEv-secret" not in _raw_row(created.json()["id"])
    config = selectors.destination_provider_config(Destination.objects.get(pk=created.json()["id"]))
    assert json.loads(config["service_account_json"]) == account


def test_it_validates_and_keeps_a_standard_webhooks_secret(api):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = {**HTTP_SIGNED, "signing_config": {"mode": "standard_webhooks", "secret": secret}}

    created = post_json(api, "/v1/destinations", body)

    assert created.status_code == 201, created.content
    assert created.json()["signing_config"] == {"mode": "standard_webhooks", "secret": "****LaSw"}
    destination = Destination.objects.get(pk=created.json()["id"])
    assert selectors.destination_signing_config(destination)["secret"] == secret


def test_it_merges_a_signing_patch_and_keeps_the_secret(api):
    created = post_json(api, "/v1/destinations", HTTP_SIGNED).json()

    response = patch_json(api, f"/v1/destinations/{created['id']}", {"signing_config": {"algorithm": "sha1"}})

    assert response.status_code == 200, response.content
    signing = selectors.destination_signing_config(Destination.objects.get(pk=created["id"]))
    assert signing["secret"] == SIGNING_SECRET
    assert signing["algorithm"] == "sha1" and signing["include_timestamp"] is True


def test_it_replaces_the_signing_config_when_the_mode_changes(api):
    created = post_json(api, "/v1/destinations", HTTP_SIGNED).json()
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    response = patch_json(
        api, f"/v1/destinations/{created['id']}", {"signing_config": {"mode": "standard_webhooks", "secret": secret}}
    )

    assert response.status_code == 200, response.content
    signing = selectors.destination_signing_config(Destination.objects.get(pk=created["id"]))
    assert signing == {"mode": "standard_webhooks", "secret": secret}
