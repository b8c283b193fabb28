"""Generated verification secrets: the right form for each type, accepted by the source
service, and verifying real signatures at ingest."""

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from hookstream import crypto
from intake import services
from intake.models import VerificationType
from intake.verification import VerificationFailed, signature_verify

BODY = b'{"type": "order.created"}'


def _source(org, kind, secret):
    return services.source_create(
        organization=org, data={"name": f"Signed {kind}", "verification_type": kind, "verification_secret": secret}
    )


def test_a_standard_webhooks_secret_is_accepted_and_verifies_signatures(alice):
    secret = services.source_secret_generate(verification_type=VerificationType.STANDARD_WEBHOOKS)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert secret != services.source_secret_generate(verification_type=VerificationType.STANDARD_WEBHOOKS)

    source = _source(alice.org, "standard_webhooks", secret)
    assert crypto.is_encrypted(source.verification_secret) and crypto.decrypt(source.verification_secret) == secret
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_1", now, BODY.decode()),
    }
    signature_verify(source=source, secret=secret, body=BODY, headers=headers)
    with pytest.raises(VerificationFailed):
        signature_verify(source=source, secret=secret, body=BODY + b" ", headers=headers)


@pytest.mark.parametrize("kind, digest", [("hmac_sha256", hashlib.sha256), ("hmac_sha1", hashlib.sha1)])
def test_an_hmac_secret_is_64_hex_characters_and_verifies_signatures(alice, kind, digest):
    secret = services.source_secret_generate(verification_type=kind)
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    source = _source(alice.org, kind, secret)
    header = "X-Hub-Signature-256" if kind == "hmac_sha256" else "X-Hub-Signature"
    good = {header: hmac.new(secret.encode(), BODY, digest).hexdigest()}
    signature_verify(source=source, secret=secret, body=BODY, headers=good)
    with pytest.raises(VerificationFailed):
        signature_verify(source=source, secret=secret[:-1] + "x", body=BODY, headers=good)
