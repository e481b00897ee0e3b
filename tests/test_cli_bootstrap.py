"""The operator's trust root: `celedger authority create-key`, then that key works over HTTP."""

from __future__ import annotations

import pytest

from api.cli import main


def test_bootstrap_key_is_printed_once_and_authenticates(
    client, settings, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CELEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CELEDGER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CELEDGER_ORIGIN", settings.origin)
    assert main(["authority", "create-key", "--label", "ops"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("cek_")
    r = client.get("/api/v1/registry/whoami", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    assert (
        client.get(
            "/api/v1/registry/whoami", headers={"Authorization": "Bearer cek_wrong"}
        ).status_code
        == 401
    )
    # The act is on the ledger and the ledger audits clean.
    assert main(["audit"]) == 0


@pytest.mark.parametrize("code", ["CN-SC", "XX"])
def test_bootstrap_refuses_below_national(settings, monkeypatch, code: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CELEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CELEDGER_DATA_DIR", str(settings.data_dir))
    assert main(["authority", "create-key", "--jurisdiction", code]) == 1


def test_home_page_links(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/")
    assert r.status_code == 200 and "/directory" in r.text and "/schema" in r.text
