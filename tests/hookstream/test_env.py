import pytest

from hookstream.env import ImproperlyConfiguredEnv, env_bool, env_choice, env_int, env_list


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        (lambda: env_bool("HS_TEST_VAR", False), "maybe"),
        (lambda: env_int("HS_TEST_VAR", 1), "ten"),
        (lambda: env_int("HS_TEST_VAR", 1, minimum=0), "-1"),
        (lambda: env_int("HS_TEST_VAR", 1, maximum=5), "6"),
        (lambda: env_choice("HS_TEST_VAR", "a", {"a", "b"}), "c"),
    ],
)
def test_it_refuses_a_malformed_value_naming_the_variable(monkeypatch, reader, raw):
    monkeypatch.setenv("HS_TEST_VAR", raw)
    with pytest.raises(ImproperlyConfiguredEnv, match="HS_TEST_VAR"):
        reader()


def test_it_reads_well_formed_values(monkeypatch):
    monkeypatch.setenv("HS_TEST_VAR", "yes")
    assert env_bool("HS_TEST_VAR", False) is True
    monkeypatch.setenv("HS_TEST_VAR", "42")
    assert env_int("HS_TEST_VAR", 1, minimum=0, maximum=100) == 42
    monkeypatch.setenv("HS_TEST_VAR", "a, b,,c")
    assert env_list("HS_TEST_VAR", []) == ["a", "b", "c"]


def test_it_falls_back_to_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("HS_TEST_VAR", raising=False)
    assert env_int("HS_TEST_VAR", 7) == 7
    assert env_bool("HS_TEST_VAR", True) is True
