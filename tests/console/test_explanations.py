"""Console: a console that explains itself — why a delivery is dead, a breaker that outlasts
the retry window, every form error in one submit, and "Retry all" that asks first."""

from __future__ import annotations

from django.urls import reverse

from deliveries.models import DeadLetter, DeliveryStatus, ReplayJob
from destinations import selectors
from destinations.models import CircuitState, CircuitStateValue, Destination
from tests.console.test_destinations import _client, _form_data, _http_destination
from tests.console.test_events import attempt
from tests.factories import make_delivery, make_destination, make_event

CIRCUIT_HELD_ERROR = "held by an open circuit longer than the retry window; last error: none"


def _dead(destination, *, reason, error="", attempts=0):
    event = make_event(destination.organization)
    delivery = make_delivery(event, destination, status=DeliveryStatus.DEAD, attempt_count=attempts)
    for n in range(1, attempts + 1):
        attempt(delivery, n, "failed", response_status=500, error=error, is_dlq=n == attempts)
    DeadLetter.objects.create(
        organization=destination.organization,
        delivery=delivery,
        destination=destination,
        event=event,
        reason=reason,
        last_error=error,
    )
    return event


# --- why a delivery is dead ------------------------------------------------------------------------


def test_the_event_page_says_why_a_delivery_died_without_an_attempt(alice):
    destination = make_destination(alice.org, name="Billing")
    event = _dead(destination, reason="circuit_open", error=CIRCUIT_HELD_ERROR)
    html = _client(alice).get(reverse("console:event-detail", args=[event.pk])).content.decode()
    assert "circuit open: held until the retry window closed" in html
    assert "none: no attempt was made" in html
    assert "No attempt was made before it was dead-lettered." in html
    assert "No attempt yet." not in html


def test_the_event_page_gives_the_reason_and_last_error_of_an_exhausted_delivery(alice):
    destination = make_destination(alice.org)
    event = _dead(destination, reason="retries_exhausted", error="HTTP 500 from the receiver", attempts=2)
    html = _client(alice).get(reverse("console:event-detail", args=[event.pk])).content.decode()
    assert "retries exhausted: every attempt of the retry policy failed" in html
    assert "HTTP 500 from the receiver" in html


def test_a_pending_delivery_still_says_no_attempt_yet(alice):
    destination = make_destination(alice.org)
    event = make_event(alice.org)
    make_delivery(event, destination, status=DeliveryStatus.HELD)
    html = _client(alice).get(reverse("console:event-detail", args=[event.pk])).content.decode()
    assert "No attempt yet." in html and "Dead letter" not in html


def test_the_dead_letter_list_shows_reason_and_last_error_in_words(alice):
    destination = make_destination(alice.org)
    never_tried = _dead(destination, reason="circuit_open", error=CIRCUIT_HELD_ERROR)
    _dead(destination, reason="permanent_failure", error="SSRF guard: 10.0.0.5 is not globally routable", attempts=1)
    for name in ("destination-detail", "destination-live"):
        html = _client(alice).get(reverse(f"console:{name}", args=[destination.pk])).content.decode()
        assert "circuit open: held until the retry window closed" in html
        assert "none: no attempt was made" in html
        assert "permanent failure: it cannot be sent as configured" in html
        assert "SSRF guard: 10.0.0.5 is not globally routable" in html
        assert reverse("console:event-detail", args=[never_tried.pk]) in html


# --- the breaker cooldown and the retry window ---------------------------------------------------------

RISKY = {
    "retry_max_attempts": "2",
    "retry_backoff_type": "fixed",
    "retry_intervals": "3",
    "circuit_breaker_reset_ms": "600000",
}


def test_the_form_warns_when_the_breaker_stays_open_longer_than_the_retry_window(alice):
    client = _client(alice)
    response = client.post(reverse("console:destination-create") + "?type=http", _form_data(**RISKY), follow=True)
    html = response.content.decode()
    destination = Destination.objects.get(organization=alice.org)
    assert response.status_code == 200 and "created" in html  # a warning, not a refusal
    assert "stays open 10 min (probe after), longer than the whole retry window (6 s over 2 retries)" in html
    # The edit form and the detail page keep saying so.
    edit = client.get(reverse("console:destination-edit", args=[destination.pk])).content.decode()
    assert "longer than the whole retry window" in edit
    detail = client.get(reverse("console:destination-detail", args=[destination.pk])).content.decode()
    assert "data-cooldown-warning" in detail


def test_a_refused_form_warns_from_the_submitted_policy(alice):
    response = _client(alice).post(reverse("console:destination-create") + "?type=http", _form_data(name="", **RISKY))
    assert response.status_code == 400
    assert "longer than the whole retry window" in response.content.decode()


def test_no_warning_when_the_retry_window_outlasts_the_breaker(alice):
    client = _client(alice)
    safe = _form_data(**{**RISKY, "circuit_breaker_reset_ms": "5000"})
    html = client.post(reverse("console:destination-create") + "?type=http", safe, follow=True).content.decode()
    assert "created" in html and "longer than the whole retry window" not in html
    off = _form_data(name="Breaker off", **RISKY)
    off.pop("circuit_breaker_enabled")
    html = client.post(reverse("console:destination-create") + "?type=http", off, follow=True).content.decode()
    assert "created" in html and "longer than the whole retry window" not in html


# --- every error in one submit ----------------------------------------------------------------------


def test_the_destination_form_reports_the_form_and_the_api_errors_together(alice):
    # A malformed list (the form's check) and a time-out below the API's minimum (the API's
    # serializer): one submit shows both.
    response = _client(alice).post(
        reverse("console:destination-create") + "?type=http", _form_data(retry_intervals="ten", timeout_ms="1")
    )
    form = response.context["form"]
    assert response.status_code == 400
    assert "Whole numbers of seconds" in form.errors["retry_intervals"][0]
    assert "timeout_ms" in form.errors
    assert not Destination.objects.filter(organization=alice.org).exists()


def test_the_source_form_reports_the_form_and_the_api_errors_together(alice):
    response = _client(alice).post(
        reverse("console:source-create"),
        {"name": "Stripe", "status": "active", "dedup_window_seconds": "soon", "verification_header": "no such:header"},
    )
    form = response.context["form"]
    assert "dedup_window_seconds" in form.errors  # the form's check
    assert "not a valid header name" in form.errors["verification_header"][0]  # the API serializer's


# --- "Retry all" asks first ---------------------------------------------------------------------------


def test_retry_all_asks_with_the_count(alice):
    destination = make_destination(alice.org, name="Billing")
    _dead(destination, reason="retries_exhausted", error="HTTP 500", attempts=1)
    _dead(destination, reason="retries_exhausted", error="HTTP 500", attempts=1)
    client = _client(alice)
    detail = client.get(reverse("console:destination-detail", args=[destination.pk])).content.decode()
    confirm_url = reverse("console:destination-dead-letters-retry-confirm", args=[destination.pk])
    assert confirm_url in detail
    page = client.get(confirm_url).content.decode()
    assert "Retry the 2 dead letters of “Billing”?" in page and "Retry 2 dead letters" in page
    assert "Reset circuit and retry" not in page
    assert reverse("console:destination-dead-letters-retry", args=[destination.pk]) in page
    assert not ReplayJob.objects.exists()  # asking changes nothing


def test_retry_all_offers_to_reset_an_open_circuit_first(alice):
    destination = make_destination(alice.org)
    _dead(destination, reason="circuit_open", error=CIRCUIT_HELD_ERROR)
    CircuitState.objects.filter(destination=destination).update(state=CircuitStateValue.OPEN, failure_count=5)
    client = _client(alice)
    page = client.get(reverse("console:destination-dead-letters-retry-confirm", args=[destination.pk]))
    html = page.content.decode()
    assert "The circuit is open" in html and "Reset circuit and retry" in html
    assert 'name="reset_circuit" value="1"' in html

    response = client.post(
        reverse("console:destination-dead-letters-retry", args=[destination.pk]), {"reset_circuit": "1"}, follow=True
    )
    html = response.content.decode()
    assert "Circuit closed." in html and "Retrying 1 dead letter(s)" in html
    assert CircuitState.objects.get(destination=destination).state == CircuitStateValue.CLOSED
    assert ReplayJob.objects.get(destination=destination).total == 1


def test_retry_all_without_dead_letters_says_so(alice):
    destination = make_destination(alice.org)
    response = _client(alice).get(
        reverse("console:destination-dead-letters-retry-confirm", args=[destination.pk]), follow=True
    )
    assert "No dead letters to retry." in response.content.decode()


def test_the_confirmation_of_another_organizations_destination_is_a_404(alice, bob):
    destination = make_destination(bob.org)
    _dead(destination, reason="retries_exhausted")
    url = reverse("console:destination-dead-letters-retry-confirm", args=[destination.pk])
    assert _client(alice).get(url).status_code == 404


def test_the_destination_form_reports_the_service_and_provider_rules_with_the_rest(alice):
    # Four kinds of error, each found by a different check: the form (a malformed list), the
    # API serializer (a time-out below its minimum), the service (an http destination needs
    # a URL) and the provider's rule across fields (bearer auth needs a token).
    response = _client(alice).post(
        reverse("console:destination-create") + "?type=http",
        _form_data(url="", retry_intervals="ten", timeout_ms="1", cfg_auth_type="bearer", signing_mode="hmac"),
    )
    form = response.context["form"]
    assert response.status_code == 400
    assert "Whole numbers of seconds" in form.errors["retry_intervals"][0]
    assert "timeout_ms" in form.errors
    assert form.errors["url"] == ["This field is required for http destinations."]
    assert form.errors["cfg_token"] == ["Required when auth_type is 'bearer'."]
    assert form.errors["signing_secret"] == ["A non-empty string is required."]
    assert not Destination.objects.filter(organization=alice.org).exists()


def test_a_refusal_by_the_service_also_shows_the_provider_rules(alice):
    # The form and the serializer pass; the service refuses the URL first, and the provider's
    # rule (basic auth needs a password) is reported in the same answer.
    response = _client(alice).post(
        reverse("console:destination-create") + "?type=http",
        _form_data(url="ftp://files.example.com/", cfg_auth_type="basic", cfg_username="ops"),
    )
    form = response.context["form"]
    assert "Must be an http:// or https:// URL with a host." in form.errors["url"]
    assert form.errors["cfg_password"] == ["Required when auth_type is 'basic'."]
    assert "cfg_username" not in form.errors
    html = response.content.decode()
    assert html.count("Required when auth_type is &#x27;basic&#x27;.") == 1  # said once


def test_a_template_blank_is_reported_with_the_other_errors(alice):
    response = _client(alice).post(
        reverse("console:destination-create-from-template", args=["slack"]),
        _form_data(name="Ops", url="", retry_intervals="ten", headers=""),
    )
    form = response.context["form"]
    assert form.errors["url"] == ["Required by the slack template."]
    assert "Whole numbers of seconds" in form.errors["retry_intervals"][0]


def test_an_unchanged_masked_signing_secret_is_not_reported_on_edit(alice):
    destination = _http_destination(alice.org)
    client = _client(alice)
    edit = reverse("console:destination-edit", args=[destination.pk])
    form = client.get(edit).context["form"]
    data = {name: value for name, value in form.initial.items() if value not in (None, False)}
    data.update(retry_intervals="ten", headers="", circuit_breaker_enabled="on")
    response = client.post(edit, data)
    form = response.context["form"]
    assert response.status_code == 400
    assert list(form.errors) == ["retry_intervals"]


# --- fields of the chosen auth type and signing mode ------------------------------------------------


def test_the_form_marks_the_fields_of_each_auth_type_and_signing_mode(alice):
    html = _client(alice).get(reverse("console:destination-create") + "?type=http").content.decode()
    assert 'id="field-cfg_token" data-show-when="cfg_auth_type" data-show-values="bearer"' in html
    assert 'id="field-cfg_password" data-show-when="cfg_auth_type" data-show-values="basic"' in html
    assert 'id="field-cfg_api_key_header" data-show-when="cfg_auth_type" data-show-values="api_key"' in html
    assert 'id="field-signing_secret" data-show-when="signing_mode" data-show-values="hmac standard_webhooks"' in html
    assert 'id="field-signing_prefix" data-show-when="signing_mode" data-show-values="hmac"' in html
    # Used whatever the auth type: no condition.
    assert 'id="field-cfg_routing_key">' in html and 'id="field-cfg_auth_type">' in html
    assert "console/forms.js" in html


def test_the_values_of_another_auth_type_are_not_kept(alice):
    client = _client(alice)
    client.post(
        reverse("console:destination-create") + "?type=http",
        _form_data(cfg_auth_type="bearer", cfg_token="tok-1234567890", cfg_username="left-over", cfg_password="pw"),
    )
    destination = Destination.objects.get(organization=alice.org)
    config = selectors.masked_provider_config(destination)
    assert config["auth_type"] == "bearer" and config["token"].endswith("7890")
    assert "username" not in config and "password" not in config

    # Switching to basic on edit removes the bearer token.
    edit = reverse("console:destination-edit", args=[destination.pk])
    form = client.get(edit).context["form"]
    data = {name: value for name, value in form.initial.items() if value not in (None, False)}
    data.update(headers="", circuit_breaker_enabled="on", cfg_auth_type="basic", cfg_username="ops", cfg_password="pw")
    assert client.post(edit, data).status_code == 302
    destination.refresh_from_db()
    config = selectors.masked_provider_config(destination)
    assert config["auth_type"] == "basic" and config["username"] == "ops" and "token" not in config
