"""A registry change reaches a running gateway without a restart; a password reset takes effect at once."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from emulators.sync_provider import SyncProviderEmulator
from registry.credentials import hash_password
from registry.loader import bump_version
from registry.models import InformationSystem
from tests.wire import post, sync_request


@pytest.fixture()
def restore_pep_password(engine: Engine):
    yield
    set_password(engine, "pep-test-password")


def set_password(engine: Engine, password: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(InformationSystem).where(InformationSystem.sender_id == "pep").values(password_hash=hash_password(password))
        )
        bump_version(session)


def test_password_reset_applies_to_the_next_message(
    gateway_url: str, engine: Engine, provider: SyncProviderEmulator, restore_pep_password: None
) -> None:
    url = f"{gateway_url}/bip-sync/"
    assert post(url, sync_request()).status == 200
    set_password(engine, "a-brand-new-password")
    assert post(url, sync_request()).error_code() == "SCE002", "the old password was still trusted"
    assert post(url, sync_request(password="a-brand-new-password")).status == 200
