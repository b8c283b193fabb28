"""Login throttling for the console and the Django admin.

Failed log-ins are counted per client address and per username (Django's
``user_login_failed`` signal), in the limiter's store (Redis when ``REDIS_URL`` is set,
shared by every web process). Once either count reaches its limit, every log-in attempt
from that address, or for that username, is answered 429 with a clear message without
looking at the password, until ``HOOKSTREAM_LOGIN_LOCKOUT_SECONDS`` after the first failure
of the series: the lock-out ends by itself. A successful log-in forgets the username's
failures.

The login views do not change: ``LoginThrottleMiddleware`` answers locked attempts before
they reach them, and connects the signal receivers when it is installed.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache as memoize

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.forms.utils import ErrorDict
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from hookstream.api import ratelimit
from hookstream.clientip import client_ip

logger = logging.getLogger(__name__)

# The login pages (URL names) and the template that shows each.
LOGIN_PAGES = {"console:login": "console/login.html", "admin:login": "admin/login.html"}


@memoize
def _login_paths() -> dict[str, str]:
    return {reverse(name): name for name in LOGIN_PAGES}


def _address_key(request) -> str | None:
    address = client_ip(request.META, settings.HOOKSTREAM_TRUSTED_PROXY_HEADERS)
    return f"login:ip:{address}" if address else None


def _username_key(username) -> str | None:
    if not isinstance(username, str) or not username:
        return None
    digest = hashlib.sha256(username.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]
    return f"login:user:{digest}"


def _limited_keys(request, username) -> list[tuple[str, int]]:
    """The (counter key, limit) pairs that apply to this attempt; a limit of 0 is off."""
    pairs = [
        (_address_key(request), settings.HOOKSTREAM_LOGIN_FAILURES_PER_ADDRESS),
        (_username_key(username), settings.HOOKSTREAM_LOGIN_FAILURES_PER_USERNAME),
    ]
    return [(key, limit) for key, limit in pairs if key and limit]


def lockout_remaining(request, username) -> int:
    """Seconds until this address and username may try again; 0 when they may now."""
    remaining = 0
    for key, limit in _limited_keys(request, username):
        count, ttl = ratelimit.counter_peek(key)
        if count >= limit:
            remaining = max(remaining, ttl)
    return remaining


def _count_failure(sender, credentials=None, request=None, **kwargs):
    if request is None:  # authenticate() called outside a request (a shell, a test)
        return
    username = (credentials or {}).get("username")
    try:
        for key, _limit in _limited_keys(request, username):
            ratelimit.counter_add(key, settings.HOOKSTREAM_LOGIN_LOCKOUT_SECONDS)
    except Exception:
        logger.warning("login throttle unavailable; failure not counted", exc_info=True)


def _forget_failures(sender, request=None, user=None, **kwargs):
    key = _username_key(getattr(user, "username", None))
    if request is None or key is None:
        return
    try:
        ratelimit.counter_clear(key)
    except Exception:
        logger.warning("login throttle unavailable; failures not cleared", exc_info=True)


class LoginThrottleMiddleware:
    """Answer a log-in POST 429 while its address or username is locked out."""

    def __init__(self, get_response):
        self.get_response = get_response
        user_login_failed.connect(_count_failure, dispatch_uid="hookstream.login_throttle.failed")
        user_logged_in.connect(_forget_failures, dispatch_uid="hookstream.login_throttle.logged_in")

    def __call__(self, request):
        if request.method == "POST":
            page = _login_paths().get(request.path_info)
            if page is not None:
                try:
                    remaining = lockout_remaining(request, request.POST.get("username"))
                except Exception:
                    # The store is down: locking everyone out would be worse than no throttle.
                    logger.warning("login throttle unavailable; attempt let through", exc_info=True)
                    remaining = 0
                if remaining:
                    return _locked(request, page, remaining)
        return self.get_response(request)


def _locked(request, page: str, remaining: int) -> HttpResponse:
    minutes = max(1, -(-remaining // 60))
    message = f"Too many failed log-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    logger.warning("login locked out for %s s (%s)", remaining, request.path_info)
    form = AuthenticationForm(request, data=request.POST)
    # Shown as the form's error; set directly so that the form never authenticates.
    form._errors = ErrorDict({"__all__": form.error_class([message], error_class="nonfield")})
    context = {"form": form, "next": request.POST.get("next", "")}
    if page == "admin:login":
        context.update(admin.site.each_context(request), title="Log in", app_path=request.get_full_path())
    response = render(request, LOGIN_PAGES[page], context, status=429)
    response["Retry-After"] = str(remaining)
    return response
