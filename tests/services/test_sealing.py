"""SECRET inputs are sealed to the server's public key before they are stored."""

from __future__ import annotations

from pathlib import Path

import pyrage
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from controlplane.errors import StoreError
from controlplane.services.sealing import is_sealed, register_recipient, seal, unseal
from controlplane.services.secrets import load_keyring


def test_sealing_needs_a_registered_key_and_only_the_identity_opens_it(
    engine: Engine, tmp_path: Path
) -> None:
    values = {"password": "pw-sealed-0042", "who": "ops", "empty": None}
    with Session(engine) as session:
        assert seal(session, values, ["empty"]) == values  # nothing to seal, no key needed
        with pytest.raises(StoreError, match="no server key"):
            seal(session, values, ["password"])
    keyring = load_keyring(tmp_path / "server")
    register_recipient(engine, keyring)
    register_recipient(engine, keyring)  # idempotent
    with Session(engine) as session:
        sealed = seal(session, values, ["password", "empty"])
    assert is_sealed(sealed["password"])
    assert sealed["who"] == "ops"
    assert sealed["empty"] is None
    assert "pw-sealed-0042" not in str(sealed)
    assert unseal({"nested": [sealed]}, keyring) == {"nested": [values]}
    other = load_keyring(tmp_path / "elsewhere")
    with pytest.raises(pyrage.DecryptError):
        unseal(sealed, other)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT recipient FROM server_keys")).scalar_one()
    assert stored == keyring.recipient
