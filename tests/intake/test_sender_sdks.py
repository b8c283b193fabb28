"""Every source template against the sender's own code, through real HTTP.

Each case signs a request the way the provider does — with its official SDK where it has a
signing helper (Stripe, Slack, Twilio, Svix, Standard Webhooks, Paddle's signature class),
or its documented example (GitHub, Shopify, Intercom, Linear, Typeform, Postmark), SendGrid
with a key pair whose signature its SDK accepts — and posts it to a live server. A correct
request is stored; a tampered body, a wrong secret and a stale timestamp each answer 401
with the reason, and store nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
import requests
import stripe
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from paddle_billing.Notifications.PaddleSignature import PaddleSignature
from paddle_billing.Notifications.Secret import Secret
from sendgrid.helpers.eventwebhook import EventWebhook
from slack_sdk.signature import SignatureVerifier
from standardwebhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook
from twilio.request_validator import RequestValidator

from intake.models import Event, Source
from intake.verification import TIMESTAMP_TOLERANCE_SECONDS

WHSEC = "whsec_" + base64.b64encode(b"sender-sdk-test-secret-32-bytes!").decode()
OTHER_WHSEC = "whsec_" + base64.b64encode(b"another-secret-of-thirty-two-by").decode()
STALE = TIMESTAMP_TOLERANCE_SECONDS + 60


@dataclass
class Signed:
    headers: dict
    body: bytes
    content_type: str = "application/json"
    query: str = ""


def _sendgrid_keys():
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(der).decode()


SENDGRID_PRIVATE, SENDGRID_PUBLIC = _sendgrid_keys()
OTHER_SENDGRID_PRIVATE, _ = _sendgrid_keys()


# --- how each provider signs: (secret, body, unix time, url) -> Signed ------------------------------


def sign_stripe(secret, body, now, url):
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=now)
    # While a secret rolls, Stripe sends a v1 per secret: a wrong one beside the right one is fine.
    header += ",v1=" + "0" * 64
    return Signed({"Stripe-Signature": header}, body)


def sign_github(secret, body, now, url):
    # docs.github.com, "Validating webhook deliveries": sha256= + hex HMAC-SHA256 of the body.
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return Signed({"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": f"d-{now}"}, body)


def sign_shopify(secret, body, now, url):
    # shopify.dev, "Verify the webhook": base64 of the HMAC-SHA256 digest of the raw body.
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return Signed({"X-Shopify-Hmac-Sha256": digest, "X-Shopify-Webhook-Id": f"w-{now}"}, body)


def sign_slack(secret, body, now, url):
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(now), body=body)
    return Signed({"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": signature}, body)


def sign_twilio_form(secret, body, now, url):
    params = {"MessageSid": f"SM{now}", "From": "+15005550006", "Body": "hello é & co", "To": "+15005550001"}
    signature = RequestValidator(secret).compute_signature(url, params)
    form = urlencode(params).encode()
    if body != _BODY:  # the tampered case: a parameter changed after signing
        form = urlencode({**params, "Body": "changed"}).encode()
    return Signed({"X-Twilio-Signature": signature}, form, "application/x-www-form-urlencoded")


def sign_twilio_json(secret, body, now, url):
    validator = RequestValidator(secret)
    query = "bodySHA256=" + validator.compute_hash(_BODY.decode())
    signature = validator.compute_signature(f"{url}?{query}", {})
    return Signed({"X-Twilio-Signature": signature}, body, query=query)


def sign_sendgrid(private_key, body, now, url):
    payload = body.decode()
    signature = base64.b64encode(private_key.sign(str(now).encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    if private_key is SENDGRID_PRIVATE and body == _BODY:
        # SendGrid's own SDK accepts this signature with the public key the source holds.
        assert EventWebhook(SENDGRID_PUBLIC).verify_signature(payload, signature, str(now))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": str(now),
    }
    return Signed(headers, body)


def sign_intercom(secret, body, now, url):
    # developers.intercom.com, "Signed notifications": sha1= + hex HMAC-SHA1 with the client secret.
    return Signed({"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}, body)


def sign_linear(secret, body, now, url):
    # linear.app/developers/webhooks: hex HMAC-SHA256 of the body in Linear-Signature.
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return Signed({"Linear-Signature": digest, "Linear-Delivery": f"l-{now}"}, body)


def sign_paddle(secret, body, now, url):
    digest = PaddleSignature.calculate_hmac(secret, f"{now}:".encode() + body).hexdigest()
    header = f"ts={now};h1={digest}"
    if body == _BODY and secret == SECRETS["paddle"]:
        assert PaddleSignature().verify(header, body.decode(), Secret(secret))  # Paddle's own check agrees
    return Signed({"Paddle-Signature": header}, body)


def sign_postmark(secret, body, now, url):
    # Postmark sends the user:password of the webhook URL as HTTP Basic credentials.
    return Signed({"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}, body)


def sign_typeform(secret, body, now, url):
    # typeform.com/developers, "Secure your webhooks": sha256= + base64 HMAC-SHA256.
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return Signed({"Typeform-Signature": f"sha256={digest}"}, body)


def sign_svix(secret, body, now, url):
    msg_id = f"msg_{now}"
    signature = SvixWebhook(secret).sign(msg_id, datetime.fromtimestamp(now, tz=UTC), body.decode())
    return Signed({"svix-id": msg_id, "svix-timestamp": str(now), "svix-signature": signature}, body)


def sign_standard_webhooks(secret, body, now, url):
    msg_id = f"msg_{now}"
    signature = StandardWebhook(secret).sign(msg_id, datetime.fromtimestamp(now, tz=UTC), body.decode())
    return Signed({"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": signature}, body)


SECRETS = {
    "stripe": "whsec_stripe_test_secret",
    "github": "It's a Secret to Everybody",
    "shopify": "shopify-app-client-secret",
    "slack": "8f742231b10e8888abcd99yyyzzz85a5",
    "twilio": "12345",
    "sendgrid": SENDGRID_PUBLIC,
    "intercom": "intercom-client-secret",
    "linear": "lin_wh_secret",
    "paddle": "pdl_ntfset_01gkpjp8bkm3tm53kdgkx6sms7_6h3qd3uFSi9YCD3OLYAShQI90XuI8lRT",
    "postmark": "hooks:correct-horse-battery",
    "typeform": "typeform-secret",
    "clerk": WHSEC,
    "svix": WHSEC,
    "resend": WHSEC,
    "standard-webhooks": WHSEC,
}
WRONG = {
    "sendgrid": OTHER_SENDGRID_PRIVATE,
    "postmark": "hooks:wrong",
    **dict.fromkeys(("clerk", "svix", "resend", "standard-webhooks"), OTHER_WHSEC),
}
SIGNING_KEY = {"sendgrid": SENDGRID_PRIVATE}

# (template, signer, whether the scheme carries a timestamp)
CASES = [
    ("stripe", sign_stripe, True),
    ("github", sign_github, False),
    ("shopify", sign_shopify, False),
    ("slack", sign_slack, True),
    ("twilio", sign_twilio_form, False),
    ("twilio", sign_twilio_json, False),
    ("sendgrid", sign_sendgrid, True),
    ("intercom", sign_intercom, False),
    ("linear", sign_linear, False),
    ("paddle", sign_paddle, True),
    ("postmark", sign_postmark, False),
    ("typeform", sign_typeform, False),
    ("clerk", sign_svix, True),
    ("svix", sign_svix, True),
    ("resend", sign_svix, True),
    ("standard-webhooks", sign_standard_webhooks, True),
]
_BODY = b'{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "type": "invoice.paid", "amount": 1999}'


def _create(alice, live_server, template: str) -> Source:
    response = requests.post(
        f"{live_server.url}/v1/sources",
        json={"template": template, "verification_secret": SECRETS[template]},
        headers={"X-API-Key": alice.raw_key},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    assert response.json()["ingest_url"] == f"{live_server.url}/v1/ingest/{response.json()['id']}"
    return Source.objects.get(pk=response.json()["id"])


def _send(url: str, signed: Signed) -> requests.Response:
    target = f"{url}?{signed.query}" if signed.query else url
    headers = {"Content-Type": signed.content_type, **signed.headers}
    return requests.post(target, data=signed.body, headers=headers, timeout=10)


@pytest.mark.parametrize(("template", "signer", "timed"), CASES, ids=[f"{c[0]}-{c[1].__name__}" for c in CASES])
def test_it_accepts_what_the_sender_signs_and_refuses_the_rest(alice, live_server, template, signer, timed):
    source = _create(alice, live_server, template)
    url = f"{live_server.url}/v1/ingest/{source.pk}"
    key = SIGNING_KEY.get(template, SECRETS[template])
    now = int(time.time())

    good = _send(url, signer(key, _BODY, now, url))
    assert good.status_code == 200, good.text
    event = Event.objects.get(pk=good.json()["event_id"])
    assert event.source_id == source.pk and event.verification_status == "verified"

    if signer is sign_twilio_form:  # a form parameter changed after signing
        tampered = _send(url, signer(key, b"tampered", now + 1, url))
    else:
        signed = signer(key, _BODY, now + 1, url)
        signed.body = _BODY.replace(b"1999", b"1")
        tampered = _send(url, signed)
    wrong = _send(url, signer(WRONG.get(template, "wrong-" + SECRETS[template]), _BODY, now + 2, url))
    refused = {"tampered": tampered, "wrong secret": wrong}
    if template == "postmark":  # Basic credentials do not cover the body: nothing to tamper with
        assert tampered.status_code == 200
        del refused["tampered"]
    if timed:
        refused["stale"] = _send(url, signer(key, _BODY, now - STALE, url))
    for case, response in refused.items():
        assert response.status_code == 401, (case, response.text)
        reason = response.json()["error"]
        if case == "stale":
            assert "outside the tolerance" in reason, reason
        else:
            assert "does not match" in reason or "do not match" in reason, (case, reason)
    missing = requests.post(url, data=_BODY, headers={"Content-Type": "application/json"}, timeout=10)
    assert missing.status_code == 401 and "is missing" in missing.json()["error"], missing.text
    assert Event.objects.filter(source=source).count() == (2 if template == "postmark" else 1)
    source.refresh_from_db()
    assert source.verification_failure_count == len(refused) + 1


def test_it_answers_slacks_url_verification_challenge(alice, live_server):
    source = _create(alice, live_server, "slack")
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps({"token": "x", "challenge": challenge, "type": "url_verification"}).encode()
    url = f"{live_server.url}/v1/ingest/{source.pk}"
    response = _send(url, sign_slack(SECRETS["slack"], body, int(time.time()), url))
    assert response.status_code == 200, response.text
    assert response.json() == {"challenge": challenge}
    assert not Event.objects.exists()
    unsigned = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert unsigned.status_code == 401
