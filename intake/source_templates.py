"""Source templates: how each well-known sender signs its webhooks, and where its secret is.

``POST /v1/sources {"template": "stripe", "verification_secret": …}`` fills the preset
(verification type and header, a dedup key where the sender gives one, the setup steps as
the description); fields given in the same request win. ``GET /v1/sources/templates``
lists them. Each template is proven against the sender's own SDK or documented example in
``tests/intake/test_sender_sdks.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from intake.models import DedupStrategy, VerificationType


@dataclass(frozen=True)
class SourceTemplate:
    id: str
    name: str
    verification_type: str | None
    # The headers the sender signs with (the first is the one holding the signature).
    headers: tuple[str, ...]
    scheme: str
    secret_hint: str
    setup: tuple[str, ...]
    verification_header: str = ""
    dedup_strategy: str | None = None
    dedup_field: str = ""
    docs_url: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def description(self) -> str:
        steps = "\n".join(f"{n}. {step}" for n, step in enumerate(self.setup, 1))
        return f"{self.name} webhooks. {self.scheme}\nSetup:\n{steps}\nSecret: {self.secret_hint}"

    def preset(self) -> dict:
        """The source fields this template fills (a create request's own fields win)."""
        preset: dict[str, object] = {
            "name": self.name,
            "description": self.description,
            "verification_type": self.verification_type,
            "verification_header": self.verification_header,
        }
        if self.dedup_strategy:
            preset.update(dedup_enabled=True, dedup_strategy=self.dedup_strategy, dedup_field=self.dedup_field)
        return preset

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("setup")
        data.pop("extra")
        data["headers"] = list(self.headers)
        data["setup_steps"] = list(self.setup)
        data["description"] = self.description
        return data


_PASTE = "Paste the source's ingest URL (shown after you create it) as the endpoint URL."
_SVIX_HEADERS = ("svix-signature", "svix-id", "svix-timestamp")
_SVIX_SCHEME = (
    "Standard Webhooks under svix-* header names: svix-signature is v1,<base64 HMAC-SHA256 of "
    "'{svix-id}.{svix-timestamp}.{body}'>, timestamp within 5 minutes."
)

TEMPLATES: tuple[SourceTemplate, ...] = (
    SourceTemplate(
        id="stripe",
        name="Stripe",
        verification_type=VerificationType.STRIPE,
        headers=("Stripe-Signature",),
        scheme="Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of '{t}.{body}'> (several v1 while a "
        "secret rolls); t within 5 minutes.",
        secret_hint="Developers → Webhooks → your endpoint → Signing secret (whsec_…).",
        setup=(
            "In the Stripe Dashboard open Developers → Webhooks and add an endpoint.",
            _PASTE,
            "Select the events to send, save, then reveal the endpoint's Signing secret.",
            "Set it as this source's verification_secret.",
        ),
        dedup_strategy=DedupStrategy.BODY_FIELD,
        dedup_field="id",
        docs_url="https://docs.stripe.com/webhooks#verify-events",
    ),
    SourceTemplate(
        id="github",
        name="GitHub",
        verification_type=VerificationType.HMAC_SHA256,
        verification_header="X-Hub-Signature-256",
        headers=("X-Hub-Signature-256", "X-GitHub-Delivery", "X-GitHub-Event"),
        scheme="X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>.",
        secret_hint="The Secret you type when adding the webhook (GitHub never shows it again).",
        setup=(
            "Open the repository's or organization's Settings → Webhooks → Add webhook.",
            _PASTE.replace("endpoint URL", "Payload URL") + " Content type: application/json.",
            "Type a long random Secret and set the same value as this source's verification_secret.",
        ),
        dedup_strategy=DedupStrategy.HEADER_FIELD,
        dedup_field="X-GitHub-Delivery",
        docs_url="https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries",
    ),
    SourceTemplate(
        id="shopify",
        name="Shopify",
        verification_type=VerificationType.HMAC_SHA256,
        verification_header="X-Shopify-Hmac-Sha256",
        headers=("X-Shopify-Hmac-Sha256", "X-Shopify-Webhook-Id", "X-Shopify-Topic"),
        scheme="X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>.",
        secret_hint="Store admin: Settings → Notifications → Webhooks ('signed with …'); an app's webhooks: "
        "the app's client secret.",
        setup=(
            "In the Shopify admin open Settings → Notifications → Webhooks → Create webhook (or subscribe "
            "from your app).",
            _PASTE + " Format: JSON.",
            "Copy the signing key shown under the webhook list (or your app's client secret) as verification_secret.",
        ),
        dedup_strategy=DedupStrategy.HEADER_FIELD,
        dedup_field="X-Shopify-Webhook-Id",
        docs_url="https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook",
    ),
    SourceTemplate(
        id="slack",
        name="Slack",
        verification_type=VerificationType.SLACK,
        headers=("X-Slack-Signature", "X-Slack-Request-Timestamp"),
        scheme="X-Slack-Signature: v0=<hex HMAC-SHA256 of 'v0:{X-Slack-Request-Timestamp}:{body}'>; "
        "timestamp within 5 minutes. The url_verification challenge is answered.",
        secret_hint="api.slack.com/apps → your app → Basic Information → App Credentials → Signing Secret.",
        setup=(
            "At api.slack.com/apps open your app → Basic Information and copy the Signing Secret as "
            "verification_secret.",
            "Open Event Subscriptions (or Interactivity), enable it and paste the ingest URL as the Request "
            "URL; hookstream answers Slack's url_verification challenge.",
        ),
        dedup_strategy=DedupStrategy.BODY_FIELD,
        dedup_field="event_id",
        docs_url="https://api.slack.com/authentication/verifying-requests-from-slack",
    ),
    SourceTemplate(
        id="twilio",
        name="Twilio",
        verification_type=VerificationType.TWILIO,
        headers=("X-Twilio-Signature", "I-Twilio-Idempotency-Token"),
        scheme="X-Twilio-Signature: <base64 HMAC-SHA1 of the URL followed by the POST parameters sorted by "
        "name, each name+value>; a JSON body is covered by the URL's bodySHA256 parameter. The URL is the "
        "public one Twilio called (set HOOKSTREAM_PUBLIC_URL behind a proxy that changes it).",
        secret_hint="Console → Account → API keys & tokens → Auth Token (the primary one).",
        setup=(
            "Copy the Auth Token from the Twilio Console (Account → API keys & tokens) as verification_secret.",
            "Open Phone Numbers → your number (or a Messaging Service) and set 'A message comes in' to the "
            "ingest URL, HTTP POST, exactly as shown (the URL is signed).",
        ),
        dedup_strategy=DedupStrategy.HEADER_FIELD,
        dedup_field="I-Twilio-Idempotency-Token",
        docs_url="https://www.twilio.com/docs/usage/webhooks/webhooks-security",
    ),
    SourceTemplate(
        id="sendgrid",
        name="SendGrid",
        verification_type=VerificationType.SENDGRID,
        headers=("X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp"),
        scheme="X-Twilio-Email-Event-Webhook-Signature: <base64 ECDSA P-256/SHA-256 signature of "
        "'{timestamp}{body}'>; timestamp within 5 minutes. The secret is SendGrid's public verification key.",
        secret_hint="Settings → Mail Settings → Event Webhook → Signature Verification → Verification Key "
        "(a public key).",
        setup=(
            "In SendGrid open Settings → Mail Settings → Event Webhooks and create or edit a webhook.",
            "Paste the ingest URL as the Post URL, enable Signed Event Webhook and save.",
            "Copy the Verification Key as verification_secret.",
        ),
        docs_url="https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features",
    ),
    SourceTemplate(
        id="intercom",
        name="Intercom",
        verification_type=VerificationType.HMAC_SHA1,
        verification_header="X-Hub-Signature",
        headers=("X-Hub-Signature",),
        scheme="X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>.",
        secret_hint="Developer Hub → your app → Basic information → Client secret.",
        setup=(
            "In the Intercom Developer Hub open your app → Webhooks.",
            _PASTE + " Choose the topics and save.",
            "Copy the app's Client secret (Basic information) as verification_secret.",
        ),
        dedup_strategy=DedupStrategy.BODY_FIELD,
        dedup_field="id",
        docs_url="https://developers.intercom.com/docs/webhooks/webhook-notifications#signed-notifications",
    ),
    SourceTemplate(
        id="linear",
        name="Linear",
        verification_type=VerificationType.HMAC_SHA256,
        verification_header="Linear-Signature",
        headers=("Linear-Signature", "Linear-Delivery", "Linear-Event"),
        scheme="Linear-Signature: <hex HMAC-SHA256 of the body>.",
        secret_hint="Settings → API → Webhooks → your webhook → Signing secret.",
        setup=(
            "In Linear open Settings → API → Webhooks → New webhook.",
            _PASTE + " Choose the data change events.",
            "Copy the webhook's signing secret as verification_secret.",
        ),
        dedup_strategy=DedupStrategy.HEADER_FIELD,
        dedup_field="Linear-Delivery",
        docs_url="https://linear.app/developers/webhooks#securing-webhooks",
    ),
    SourceTemplate(
        id="paddle",
        name="Paddle",
        verification_type=VerificationType.PADDLE,
        headers=("Paddle-Signature",),
        scheme="Paddle-Signature: ts=<unix time>;h1=<hex HMAC-SHA256 of '{ts}:{body}'>; ts within 5 minutes.",
        secret_hint="Developer Tools → Notifications → your destination → Secret key (pdl_ntfset_…).",
        setup=(
            "In Paddle open Developer Tools → Notifications → New destination (type: webhook).",
            _PASTE + " Select the events and save.",
            "Open the destination's menu → Edit and copy its Secret key as verification_secret.",
        ),
        dedup_strategy=DedupStrategy.BODY_FIELD,
        dedup_field="event_id",
        docs_url="https://developer.paddle.com/webhooks/signature-verification",
    ),
    SourceTemplate(
        id="postmark",
        name="Postmark",
        verification_type=VerificationType.BASIC_AUTH,
        headers=("Authorization",),
        scheme="Postmark does not sign webhooks; it sends HTTP Basic credentials put in the webhook URL. "
        "Add Postmark's webhook IPs to ip_allowlist for more.",
        secret_hint="The user:password you put in the webhook URL (you choose them).",
        setup=(
            "Choose a user name and a long random password; set 'user:password' as verification_secret.",
            "In Postmark open Servers → your server → Webhooks → Add webhook.",
            "Enter the ingest URL with the credentials: https://user:password@<host>/v1/ingest/<source id>.",
        ),
        docs_url="https://postmarkapp.com/support/article/1199-webhooks-security",
    ),
    SourceTemplate(
        id="typeform",
        name="Typeform",
        verification_type=VerificationType.HMAC_SHA256,
        verification_header="Typeform-Signature",
        headers=("Typeform-Signature",),
        scheme="Typeform-Signature: sha256=<base64 HMAC-SHA256 of the body>.",
        secret_hint="The secret you type in the webhook's settings (Connect → Webhooks → Edit).",
        setup=(
            "Open the form → Connect → Webhooks → Add a webhook and paste the ingest URL.",
            "Edit the webhook, type a long random Secret and set the same value as verification_secret.",
        ),
        dedup_strategy=DedupStrategy.BODY_FIELD,
        dedup_field="event_id",
        docs_url="https://www.typeform.com/developers/webhooks/secure-your-webhooks/",
    ),
    SourceTemplate(
        id="clerk",
        name="Clerk",
        verification_type=VerificationType.STANDARD_WEBHOOKS,
        verification_header="svix-signature",
        headers=_SVIX_HEADERS,
        scheme=_SVIX_SCHEME,
        secret_hint="Dashboard → Configure → Webhooks → your endpoint → Signing Secret (whsec_…).",
        setup=(
            "In the Clerk Dashboard open Configure → Webhooks → Add Endpoint.",
            _PASTE + " Subscribe to the events.",
            "Copy the endpoint's Signing Secret as verification_secret.",
        ),
        dedup_strategy=DedupStrategy.HEADER_FIELD,
        dedup_field="svix-id",
        docs_url="https://clerk.com/docs/webhooks/sync-data",
    ),
    SourceTemplate(
        id="svix",
        name="Svix",
        verification_type=VerificationType.STANDARD_WEBHOOKS,
        verification_header="svix-signature",
        headers=_SVIX_HEADERS,
        scheme=_SVIX_SCHEME,
        secret_hint="The sender's App Portal → Endpoints → your endpoint → Signing Secret (whsec_…).",
        setup=(
            "In the sender's Svix App Portal add an endpoint.",
            _PASTE,
            "Copy the endpoint's Signing Secret as verification_secret.",
        ),
        dedup_strategy=DedupStrategy.HEADER_FIELD,
        dedup_field="svix-id",
        docs_url="https://docs.svix.com/receiving/verifying-payloads/how-manual",
    ),
    SourceTemplate(
        id="resend",
        name="Resend",
        verification_type=VerificationType.STANDARD_WEBHOOKS,
        verification_header="svix-signature",
        headers=_SVIX_HEADERS,
        scheme=_SVIX_SCHEME,
        secret_hint="Dashboard → Webhooks → your webhook → Signing Secret (whsec_…).",
        setup=(
            "In the Resend dashboard open Webhooks → Add Webhook.",
            _PASTE + " Select the events.",
            "Copy the webhook's Signing Secret as verification_secret.",
        ),
        dedup_strategy=DedupStrategy.HEADER_FIELD,
        dedup_field="svix-id",
        docs_url="https://resend.com/docs/dashboard/webhooks/verify-webhooks-requests",
    ),
    SourceTemplate(
        id="standard-webhooks",
        name="Standard Webhooks",
        verification_type=VerificationType.STANDARD_WEBHOOKS,
        verification_header="webhook-signature",
        headers=("webhook-signature", "webhook-id", "webhook-timestamp"),
        scheme="webhook-signature: v1,<base64 HMAC-SHA256 of '{webhook-id}.{webhook-timestamp}.{body}'>; "
        "timestamp within 5 minutes.",
        secret_hint="The sender's signing secret (whsec_ + base64); or let hookstream generate one.",
        setup=(
            "Create the endpoint at the sender with the ingest URL.",
            "Set the sender's whsec_… signing secret as verification_secret.",
        ),
        dedup_strategy=DedupStrategy.HEADER_FIELD,
        dedup_field="webhook-id",
        docs_url="https://www.standardwebhooks.com/",
    ),
    SourceTemplate(
        id="custom",
        name="Custom",
        verification_type=None,
        headers=(),
        scheme="No verification preset: choose hmac_sha256 / hmac_sha1 (hex or base64, any header), "
        "standard_webhooks, basic_auth or none.",
        secret_hint="Whatever your sender signs with.",
        setup=(
            "Point your sender at the ingest URL.",
            "Pick a verification_type, verification_header and verification_secret matching how it signs.",
        ),
    ),
)

_BY_ID = {template.id: template for template in TEMPLATES}


def all_source_templates() -> tuple[SourceTemplate, ...]:
    return TEMPLATES


def source_template(template_id: str) -> SourceTemplate | None:
    return _BY_ID.get(template_id)
