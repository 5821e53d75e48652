"""Passwords in URLs and credential variables never survive redaction; ordinary text does."""
import pytest

from underspec.base.redaction import redact


@pytest.mark.parametrize("text,shown", [
    ("http://alice:s3cr%40t@host:5000/x", "http://alice:***@host:5000/x"),
    ("postgresql+psycopg://u:p@db/optuna", "postgresql+psycopg://u:***@db/optuna"),
    ("API request to https://bob:pw@h/api failed; retry https://bob:pw@h/api", "https://bob:***@h/api failed"),
    ("sqlite:///optuna.db and http://host:5000 stay", "sqlite:///optuna.db and http://host:5000 stay"),
    ("user@host without a password", "user@host without a password"),
])
def test_url_passwords_are_hidden(text, shown):
    out = redact(text)
    assert shown in out and ":pw@" not in out and "s3cr" not in out and ":p@" not in out


def test_credential_variables_are_hidden_wherever_they_appear(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "hunter22")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "abc")  # too short to replace safely: left alone
    assert redact("connect failed: password 'hunter22' rejected; abc") == "connect failed: password '***' rejected; abc"
