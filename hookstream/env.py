"""Typed readers for settings that come from the environment.

Each reader refuses a malformed value with a message naming the variable, so a typo in a
deployment fails at start-up instead of silently running with a default.
"""

import ipaddress
import os
import re
import ssl
from typing import overload


class ImproperlyConfiguredEnv(Exception):
    pass


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: None = None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfiguredEnv(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfiguredEnv(f"{name}={value} is above the maximum {maximum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfiguredEnv(f"{name}={value} is below the minimum {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: set[str]) -> str:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw not in choices:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} must be one of {sorted(choices)}")
    return raw


def env_base_url(name: str) -> str:
    """An absolute ``http(s)://host[:port][/path]`` URL without a trailing slash, or ""."""
    raw = (os.environ.get(name) or "").strip().rstrip("/")
    if raw and not (raw.startswith(("http://", "https://")) and len(raw.split("/")) > 2 and raw.split("/")[2]):
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not an http:// or https:// URL")
    return raw


def env_pem_file(name: str) -> str:
    """The path of a readable PEM file holding at least one CA certificate that loads, or "".

    Checked here so that a wrong path or a file of something else stops the process at
    start-up, not every TLS connection later."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return ""
    if not os.path.isfile(raw):
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not a file")
    try:
        with open(raw, encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} cannot be read: {exc.strerror or exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        ssl.create_default_context(cafile=raw)
    except ssl.SSLError as exc:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not a usable PEM CA bundle: {exc}") from None
    return os.path.abspath(raw)


_HOST_NAME = re.compile(r"^\.?(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$")


def env_networks_and_hosts(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of CIDRs (or single addresses) and host names; a leading dot
    (``.corp.example``) stands for every name under it. Anything else is refused."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    entries = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            entries.append(str(ipaddress.ip_network(item, strict=False)))
            continue
        except ValueError:
            pass
        host = item.lower()
        if not _HOST_NAME.match(host) or len(host) > 253:
            raise ImproperlyConfiguredEnv(f"{name}: {item!r} is neither a CIDR, an IP address nor a host name")
        entries.append(host.rstrip("."))
    return entries
