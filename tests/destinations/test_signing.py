"""signing_config: its schema and the signature headers it produces."""

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from destinations.signing import SigningConfigError, signature_headers, validate_signing_config

BODY = b'{"type":"order.created","id":42}'
MOMENT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_it_fills_the_hmac_defaults():
    assert validate_signing_config({"secret": "s3cret"}) == {
        "mode": "hmac",
        "secret": "s3cret",
        "algorithm": "sha256",
        "header": "X-hookstream-Signature",
        "prefix": "sha256=",
        "include_timestamp": False,
    }


def test_it_defaults_the_prefix_to_the_algorithm():
    assert validate_signing_config({"secret": "s", "algorithm": "sha1"})["prefix"] == "sha1="


@pytest.mark.parametrize("empty", [None, {}])
def test_it_treats_an_empty_config_as_no_signing(empty):
    assert validate_signing_config(empty) is None


@pytest.mark.parametrize(
    "config,field",
    [
        ({"secret": ""}, "signing_config.secret"),
        ({"secret": 123}, "signing_config.secret"),
        ({"secret": "s", "algorithm": "sha512"}, "signing_config.algorithm"),
        ({"secret": "s", "header": "Bad Header"}, "signing_config.header"),
        ({"secret": "s", "prefix": "a\nb"}, "signing_config.prefix"),
        ({"secret": "s", "include_timestamp": "yes"}, "signing_config.include_timestamp"),
        ({"secret": "s", "colour": "red"}, "signing_config.colour"),
        ({"mode": "standard_webhooks", "secret": "whsec_!!!not base64"}, "signing_config.secret"),
        ({"mode": "standard_webhooks", "secret": "plain"}, "signing_config.secret"),
        ({"mode": "standard_webhooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "algorithm": "sha1"}, None),
    ],
)
def test_it_names_the_bad_field(config, field):
    with pytest.raises(SigningConfigError) as excinfo:
        validate_signing_config(config)
    if field:
        assert field in excinfo.value.errors
    else:
        assert "signing_config.algorithm" in excinfo.value.errors


def test_it_signs_the_body_with_hex_hmac():
    config = validate_signing_config({"secret": "s3cret"})

    headers = signature_headers(config, body=BODY, event_id="evt_1", timestamp=MOMENT)

    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert headers == {"X-hookstream-Signature": f"sha256={expected}"}


def test_it_signs_the_timestamp_and_body_when_asked():
    config = validate_signing_config(
        {"secret": "s3cret", "algorithm": "sha1", "header": "X-Sig", "prefix": "", "include_timestamp": True}
    )

    headers = signature_headers(config, body=BODY, event_id="evt_1", timestamp=MOMENT)

    unix = int(MOMENT.timestamp())
    expected = hmac.new(b"s3cret", f"{unix}.".encode() + BODY, hashlib.sha1).hexdigest()
    assert headers == {"X-Sig": expected}


def test_it_signs_standard_webhooks_that_the_reference_library_verifies():
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    config = validate_signing_config({"mode": "standard_webhooks", "secret": secret})
    now = datetime.now(tz=UTC)

    headers = signature_headers(config, body=BODY, event_id="evt_abc", timestamp=now)

    assert headers["webhook-id"] == "evt_abc"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    Webhook(secret).verify(BODY, headers)  # raises if the signature is wrong


def test_it_adds_nothing_without_a_config():
    assert signature_headers(None, body=BODY, event_id="evt_1", timestamp=MOMENT) == {}
