from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from connectors.models import Connection, Provider
from well.audit import Actor
from well.encryption import (
    _SEALED_PREFIX,
    SecretUnreadable,
    _b64decode,
    _b64encode,
    _data_key,
    master_key_generate,
    secret_open,
    secret_seal,
    workspace_keys_rewrap,
)
from well.models import WorkspaceKey
from well.services import workspace_delete

pytestmark = pytest.mark.django_db

SENTINEL_ACCESS = "sentinel-access-token-7f3a9c"
SENTINEL_REFRESH = "sentinel-refresh-token-51be0d"


def _connection_with_tokens(workspace, provider=Provider.QUICKBOOKS) -> Connection:
    conn = Connection(workspace=workspace, provider=provider)
    conn.access_token = secret_seal(conn, "access_token", SENTINEL_ACCESS)
    conn.refresh_token = secret_seal(conn, "refresh_token", SENTINEL_REFRESH)
    conn.save()
    return conn


def _dump_all_tables() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            chunks.append(repr(cursor.fetchall()))
    return "\n".join(chunks)


def test_a_dump_of_every_table_holds_no_plaintext_token(make_workspace):
    _connection_with_tokens(make_workspace("Acme"))

    dump = _dump_all_tables()

    assert SENTINEL_ACCESS not in dump
    assert SENTINEL_REFRESH not in dump


def test_sealed_tokens_open_on_their_own_row(make_workspace):
    conn = _connection_with_tokens(make_workspace("Acme"))
    conn.refresh_from_db()

    assert secret_open(conn, "access_token") == SENTINEL_ACCESS
    assert secret_open(conn, "refresh_token") == SENTINEL_REFRESH


def test_a_ciphertext_copied_to_another_workspaces_row_does_not_open(make_workspace):
    mine = _connection_with_tokens(make_workspace("Acme"))
    theirs = _connection_with_tokens(make_workspace("Globex"))

    theirs.access_token = mine.access_token
    theirs.save(update_fields=["access_token"])

    with pytest.raises(SecretUnreadable):
        secret_open(theirs, "access_token")


def test_a_ciphertext_copied_to_another_row_of_the_same_workspace_does_not_open(make_workspace):
    workspace = make_workspace("Acme")
    quickbooks = _connection_with_tokens(workspace, Provider.QUICKBOOKS)
    qonto = _connection_with_tokens(workspace, Provider.QONTO)

    qonto.access_token = quickbooks.access_token

    with pytest.raises(SecretUnreadable):
        secret_open(qonto, "access_token")


def test_a_ciphertext_copied_to_another_field_does_not_open(make_workspace):
    conn = _connection_with_tokens(make_workspace("Acme"))

    conn.refresh_token = conn.access_token

    with pytest.raises(SecretUnreadable):
        secret_open(conn, "refresh_token")


def test_a_tampered_ciphertext_does_not_open(make_workspace):
    conn = _connection_with_tokens(make_workspace("Acme"))
    # Flip one bit of the sealed bytes themselves (the last base64 letter of an unpadded text
    # may carry no bits at all, so changing it could leave the ciphertext as it was).
    prefix, encoded = (
        conn.access_token[: len(_SEALED_PREFIX)],
        conn.access_token[len(_SEALED_PREFIX) :],
    )
    raw = bytearray(_b64decode(encoded))
    raw[-1] ^= 0x01
    conn.access_token = prefix + _b64encode(bytes(raw))

    with pytest.raises(SecretUnreadable):
        secret_open(conn, "access_token")


def test_two_workspaces_have_different_data_keys(make_workspace):
    first, second = make_workspace("Acme"), make_workspace("Globex")

    assert _data_key(first.pk) != _data_key(second.pk)
    assert len(_data_key(first.pk)) == 32


def test_data_keys_are_stored_only_wrapped(make_workspace):
    workspace = make_workspace("Acme")
    wrapped = bytes(WorkspaceKey.objects.get(workspace=workspace).wrapped_key)

    assert _data_key(workspace.pk) not in wrapped


def test_rotation_rewraps_every_key_and_everything_stays_readable(settings, make_workspace):
    workspaces = [make_workspace(name) for name in ("Acme", "Globex", "Initech")]
    connections = [_connection_with_tokens(ws) for ws in workspaces]
    old_entry = settings.WELL_MASTER_KEYS[0]
    new_entry = master_key_generate()
    new_id = new_entry.partition(":")[0]

    with override_settings(WELL_MASTER_KEYS=[new_entry, old_entry]):
        assert workspace_keys_rewrap() == 3
        assert set(WorkspaceKey.objects.values_list("master_key_id", flat=True)) == {new_id}
        assert workspace_keys_rewrap() == 0

    # The old master key is gone from the configuration: rewrapped keys still open.
    with override_settings(WELL_MASTER_KEYS=[new_entry]):
        for conn in connections:
            conn.refresh_from_db()
            assert secret_open(conn, "access_token") == SENTINEL_ACCESS


def test_without_rotation_removing_the_old_master_key_makes_secrets_unreadable(make_workspace):
    conn = _connection_with_tokens(make_workspace("Acme"))

    with (
        override_settings(WELL_MASTER_KEYS=[master_key_generate()]),
        pytest.raises(SecretUnreadable),
    ):
        secret_open(conn, "access_token")


def test_a_deleted_workspaces_secrets_cannot_be_opened_from_a_copy(make_workspace):
    workspace = make_workspace("Acme")
    conn = _connection_with_tokens(workspace)
    copied_row = Connection(
        pk=conn.pk,
        workspace_id=workspace.pk,
        provider=conn.provider,
        access_token=conn.access_token,
        refresh_token=conn.refresh_token,
    )

    workspace_delete(workspace=workspace, actor=Actor.system("tests"), reason="customer left")

    assert not WorkspaceKey.objects.filter(workspace_id=workspace.pk).exists()
    with pytest.raises(SecretUnreadable):
        secret_open(copied_row, "access_token")
