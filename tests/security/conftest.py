"""Fixtures of the security tests."""

import socket

import pytest


@pytest.fixture
def forbid_connections(monkeypatch):
    """Fail the test if anything tries to connect to one of the addresses in the returned set."""
    forbidden: set[str] = set()
    attempts: list[str] = []
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def check(address) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host in forbidden:
            attempts.append(host)
            pytest.fail(f"a connection to {host} was attempted")

    def connect(self, address):
        check(address)
        return original_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return original_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield forbidden
    assert attempts == []
