"""Source templates (spec §8), the verification schemes they preset, and why a 401 is a 401."""

import base64
import hashlib
import hmac
import time

import pytest
from sendgrid.helpers.eventwebhook import EventWebhook

from hookstream import crypto
from intake.models import Event, Source
from intake.source_templates import all_source_templates
from intake.verification import VerificationFailed, signature_verify
from tests.factories import make_source
from tests.intake.helpers import assert_error, ingest, patch_json, post_json

EXPECTED_IDS = {
    "stripe",
    "github",
    "shopify",
    "slack",
    "twilio",
    "sendgrid",
    "intercom",
    "linear",
    "paddle",
    "postmark",
    "typeform",
    "clerk",
    "svix",
    "resend",
    "standard-webhooks",
    "custom",
}


def test_it_lists_the_templates_with_their_scheme_headers_and_setup(api):
    response = api.get("/v1/sources/templates")
    assert response.status_code == 200
    templates = {t["id"]: t for t in response.json()["templates"]}
    assert set(templates) == EXPECTED_IDS
    stripe = templates["stripe"]
    assert stripe["verification_type"] == "stripe"
    assert stripe["headers"] == ["Stripe-Signature"]
    assert "Signing secret" in stripe["secret_hint"]
    assert "Setup:" in stripe["description"] and stripe["setup_steps"]
    for svix_like in ("clerk", "svix", "resend"):
        assert templates[svix_like]["verification_type"] == "standard_webhooks"
        assert templates[svix_like]["headers"][0] == "svix-signature"
    assert templates["sendgrid"]["verification_type"] == "sendgrid"
    assert templates["custom"]["verification_type"] is None


def test_it_fills_the_preset_from_a_template_and_lets_given_fields_win(api):
    response = post_json(api, "/v1/sources", {"template": "github", "verification_secret": "s3cret"})
    assert response.status_code == 201, response.content
    source = response.json()
    assert source["name"] == "GitHub" and source["template"] == "github"
    assert source["verification_type"] == "hmac_sha256"
    assert source["verification_header"] == "X-Hub-Signature-256"
    assert source["dedup_enabled"] is True and source["dedup_field"] == "X-GitHub-Delivery"
    assert "Webhooks → Add webhook" in source["description"]

    mine = post_json(api, "/v1/sources", {"template": "stripe", "name": "Billing", "verification_secret": "whsec_x"})
    assert mine.status_code == 201 and mine.json()["name"] == "Billing"
    assert mine.json()["verification_type"] == "stripe"


def test_it_refuses_an_unknown_template_and_a_template_without_its_secret(api):
    assert_error(post_json(api, "/v1/sources", {"template": "acme"}), 400, "template")
    assert_error(post_json(api, "/v1/sources", {"template": "stripe"}), 400, "verification_secret")
    assert_error(post_json(api, "/v1/sources", {"template": "sendgrid", "verification_secret": "nope"}), 400)
    assert_error(post_json(api, "/v1/sources", {"template": "postmark", "verification_secret": "nocolon"}), 400)
    assert not Source.objects.exists()


def test_a_patch_with_a_template_re_applies_its_verification_but_keeps_the_name(api, alice):
    source = make_source(alice.org, name="Mine")
    response = patch_json(api, f"/v1/sources/{source.pk}", {"template": "slack", "verification_secret": "abc"})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Mine" and response.json()["verification_type"] == "slack"


# --- verification: documented vectors and the reasons of a 401 ---------------------------------------


def test_it_verifies_githubs_documented_example(alice, client):
    # docs.github.com "Validating webhook deliveries", "Testing the webhook payload validation".
    source = make_source(alice.org, verification_type="hmac_sha256")
    Source.objects.filter(pk=source.pk).update(verification_secret=_encrypted("It's a Secret to Everybody"))
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    response = ingest(client, source, b"Hello, World!", content_type="text/plain", HTTP_X_HUB_SIGNATURE_256=signature)
    assert response.status_code == 200, response.content


def _encrypted(secret):
    return crypto.encrypt(secret)


SENDGRID_VECTOR = {  # the example of SendGrid's SDK tests and documentation
    "public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+"
    "2fNNRaINXvVpiglSI8eNEc6wEA3F+g==",
    "signature": "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=",
    "timestamp": "1600112502",
    "payload": '[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","sg_event_id":'
    '"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","sg_message_id":'
    '"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","smtp-id":'
    '"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n',
}


def test_it_verifies_sendgrids_documented_vector_as_its_sdk_does():
    vector = SENDGRID_VECTOR
    assert EventWebhook(vector["public_key"]).verify_signature(
        vector["payload"], vector["signature"], vector["timestamp"]
    )
    source = Source(verification_type="sendgrid")
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": vector["signature"],
        "X-Twilio-Email-Event-Webhook-Timestamp": vector["timestamp"],
    }
    then = float(vector["timestamp"]) + 10
    body = vector["payload"].encode()
    signature_verify(source=source, secret=vector["public_key"], body=body, headers=headers, now=then)
    with pytest.raises(VerificationFailed, match="does not match"):
        signature_verify(source=source, secret=vector["public_key"], body=body[:-2], headers=headers, now=then)
    with pytest.raises(VerificationFailed, match="outside the tolerance"):
        signature_verify(source=source, secret=vector["public_key"], body=body, headers=headers)


def _stripe_header(secret, body, stamp, *extra):
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return ",".join([f"t={stamp}", *extra, f"v1={digest}"])


def test_every_401_says_why(api, client):
    created = post_json(api, "/v1/sources", {"template": "stripe", "verification_secret": "whsec_abc"}).json()
    body = b'{"id": "evt_1"}'
    now = int(time.time())
    missing = assert_error(ingest(client, created["id"], body), 401)
    assert missing["error"] == "Signature verification failed: the Stripe-Signature header is missing."
    bad = ingest(client, created["id"], body, HTTP_STRIPE_SIGNATURE=_stripe_header("whsec_other", body, now))
    assert assert_error(bad, 401)["error"] == "Signature verification failed: the signature does not match."
    stale = ingest(client, created["id"], body, HTTP_STRIPE_SIGNATURE=_stripe_header("whsec_abc", body, now - 301))
    assert "the timestamp is outside the tolerance of 300 seconds" in assert_error(stale, 401)["error"]
    garbled = ingest(client, created["id"], body, HTTP_STRIPE_SIGNATURE="nonsense")
    assert "no t= timestamp" in assert_error(garbled, 401)["error"]
    assert not Event.objects.exists()
    # Several v1 values (a secret being rolled): any one may match.
    rolled = _stripe_header("whsec_abc", body, now, "v1=" + "ab" * 32, "v0=" + "cd" * 32)
    assert ingest(client, created["id"], body, HTTP_STRIPE_SIGNATURE=rolled).status_code == 200


@pytest.mark.parametrize(
    ("kind", "header", "prefix", "encode"),
    [
        ("hmac_sha256", "X-Hub-Signature-256", "sha256=", "hex"),
        ("hmac_sha1", "X-Hub-Signature", "sha1=", "hex"),
        ("hmac_sha256", "Typeform-Signature", "sha256=", "base64"),
        ("hmac_sha256", "X-Signature", "v1=", "hex"),
    ],
)
def test_it_strips_a_known_signature_prefix_without_being_told(alice, client, kind, header, prefix, encode):
    source = make_source(alice.org, verification_type=kind, verification_header=header)
    Source.objects.filter(pk=source.pk).update(verification_secret=_encrypted("k"))
    body = b'{"a": 1}'
    digest = hmac.new(b"k", body, hashlib.sha256 if kind == "hmac_sha256" else hashlib.sha1).digest()
    text = digest.hex() if encode == "hex" else base64.b64encode(digest).decode()
    meta = "HTTP_" + header.upper().replace("-", "_")
    assert ingest(client, source, body, **{meta: prefix + text}).status_code == 200
    assert ingest(client, source, body, **{meta: "md5=" + text}).status_code == 401


def test_slack_signatures_need_their_timestamp_header(alice, client):
    source = make_source(alice.org, verification_type="slack")
    Source.objects.filter(pk=source.pk).update(verification_secret=_encrypted("slack-secret"))
    body = b"token=x&command=%2Fdeploy"
    now = str(int(time.time()))
    signature = "v0=" + hmac.new(b"slack-secret", f"v0:{now}:".encode() + body, hashlib.sha256).hexdigest()
    form = "application/x-www-form-urlencoded"
    without = ingest(client, source, body, content_type=form, HTTP_X_SLACK_SIGNATURE=signature)
    assert "X-Slack-Request-Timestamp header is missing" in assert_error(without, 401)["error"]
    good = ingest(
        client, source, body, content_type=form, HTTP_X_SLACK_SIGNATURE=signature, HTTP_X_SLACK_REQUEST_TIMESTAMP=now
    )
    assert good.status_code == 200


# --- the URLs shown: built from the request when HOOKSTREAM_PUBLIC_URL is unset -----------------------


def test_ingest_and_publish_urls_follow_the_request_host_and_port(api, settings):
    settings.HOOKSTREAM_PUBLIC_URL = ""
    source = post_json(api, "/v1/sources", {"name": "A"}, HTTP_HOST="hooks.local:8100").json()
    assert source["ingest_url"] == f"http://hooks.local:8100/v1/ingest/{source['id']}"
    topic = post_json(api, "/v1/topics", {"name": "Orders"}, HTTP_HOST="127.0.0.1:8100").json()
    assert topic["publish_url"] == "http://127.0.0.1:8100/v1/topics/orders/publish"
    listed = api.get("/v1/sources", HTTP_HOST="127.0.0.1:9000").json()["sources"][0]
    assert listed["ingest_url"].startswith("http://127.0.0.1:9000/v1/ingest/")


def test_a_trusted_proxy_sets_the_scheme_and_host_and_an_untrusted_one_does_not(api, settings):
    settings.HOOKSTREAM_PUBLIC_URL = ""
    forwarded = {
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_HOST": "hooks.example.com",
        "HTTP_HOST": "app:8000",
    }
    untrusted = post_json(api, "/v1/sources", {"name": "A"}, **forwarded).json()
    assert untrusted["ingest_url"].startswith("http://app:8000/")
    settings.HOOKSTREAM_TRUSTED_PROXY_HEADERS = ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"]
    trusted = post_json(api, "/v1/sources", {"name": "B"}, **forwarded).json()
    assert trusted["ingest_url"] == f"https://hooks.example.com/v1/ingest/{trusted['id']}"


def test_the_public_url_setting_wins_over_the_request(api, settings):
    settings.HOOKSTREAM_PUBLIC_URL = "https://hooks.example.com"
    source = post_json(api, "/v1/sources", {"name": "A"}, HTTP_HOST="other:1").json()
    assert source["ingest_url"] == f"https://hooks.example.com/v1/ingest/{source['id']}"


def test_every_template_id_is_accepted_by_the_create_endpoint(api):
    for template in all_source_templates():
        secret = {
            "sendgrid": SENDGRID_VECTOR["public_key"],
            "postmark": "u:p",
            "clerk": "whsec_" + base64.b64encode(b"x" * 24).decode(),
        }.get(template.id, "whsec_" + base64.b64encode(b"y" * 24).decode())
        body = {"template": template.id, "slug": template.id}
        if template.verification_type:
            body["verification_secret"] = secret
        response = post_json(api, "/v1/sources", body)
        assert response.status_code == 201, (template.id, response.content)
