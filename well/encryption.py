"""Per-workspace envelope encryption (AES-GCM from the `cryptography` package).

Each workspace has a random 256-bit data key, stored only wrapped by a master key from the
environment (settings.WELL_MASTER_KEYS, "id:base64url" entries, the first one current).
Secrets are sealed with the data key and bound, as associated data, to the workspace, the
model, the field and the row, so a ciphertext moved anywhere else does not open.
See docs/security.md for why this is not django-cryptography.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

from well.models import Workspace, WorkspaceKey

_NONCE_BYTES = 12
_SEALED_PREFIX = "v1."


class SecretUnreadable(Exception):
    """A sealed value cannot be opened: wrong place, wrong key, shredded or tampered."""


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@lru_cache(maxsize=8)
def _parse_master_keys(entries: tuple[str, ...]) -> tuple[str, dict[str, bytes]]:
    keys: dict[str, bytes] = {}
    for entry in entries:
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise ImproperlyConfigured("WELL_MASTER_KEYS entries look like 'id:base64key'.")
        try:
            key = _b64decode(encoded)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(f"Master key {key_id!r} is not base64.") from exc
        if len(key) != 32:
            raise ImproperlyConfigured(f"Master key {key_id!r} must be 32 bytes.")
        keys[key_id] = key
    if not keys:
        raise ImproperlyConfigured("WELL_MASTER_KEYS is empty.")
    return entries[0].partition(":")[0], keys


def master_keys() -> tuple[str, dict[str, bytes]]:
    """The current master key ID and every configured master key by ID."""
    return _parse_master_keys(tuple(settings.WELL_MASTER_KEYS))


def master_key_generate() -> str:
    """A new master key entry, for operators (`id:base64url`)."""
    return f"mk{timezone.now():%Y%m%d}:{_b64encode(AESGCM.generate_key(bit_length=256))}"


def _wrap_aad(workspace_id: int) -> bytes:
    return f"well:data-key:v1|workspace={workspace_id}".encode()


def _wrap(*, workspace_id: int, data_key: bytes) -> tuple[str, bytes]:
    current_id, keys = master_keys()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(keys[current_id]).encrypt(nonce, data_key, _wrap_aad(workspace_id))
    return current_id, nonce + sealed


def _unwrap(*, workspace_id: int, master_key_id: str, wrapped: bytes) -> bytes:
    _, keys = master_keys()
    if master_key_id not in keys:
        raise SecretUnreadable(f"master key {master_key_id!r} is not configured")
    try:
        return AESGCM(keys[master_key_id]).decrypt(
            wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _wrap_aad(workspace_id)
        )
    except InvalidTag as exc:
        raise SecretUnreadable("data key does not unwrap") from exc


def workspace_key_create(*, workspace: Workspace) -> WorkspaceKey:
    """Give a workspace its random data key (called once, when the workspace is created)."""
    master_key_id, wrapped = _wrap(
        workspace_id=workspace.pk, data_key=AESGCM.generate_key(bit_length=256)
    )
    return WorkspaceKey.objects.create(
        workspace=workspace, master_key_id=master_key_id, wrapped_key=wrapped
    )


@lru_cache(maxsize=1024)
def _data_key_cached(
    workspace_id: int, master_key_id: str, wrapped: bytes, configured: tuple[str, ...]
) -> bytes:
    # `configured` is part of the cache key so that removing a master key takes effect.
    return _unwrap(workspace_id=workspace_id, master_key_id=master_key_id, wrapped=wrapped)


def _data_key(workspace_id: int) -> bytes:
    row = (
        WorkspaceKey.objects.filter(workspace_id=workspace_id)
        .values_list("master_key_id", "wrapped_key")
        .first()
    )
    if row is None:
        raise SecretUnreadable(f"workspace {workspace_id} has no data key (shredded?)")
    master_key_id, wrapped = row
    return _data_key_cached(
        workspace_id, master_key_id, bytes(wrapped), tuple(settings.WELL_MASTER_KEYS)
    )


def _field_aad(instance: models.Model, field: str) -> bytes:
    if instance.pk is None:
        raise ValueError("seal secrets on a row with a primary key (use a UUID primary key)")
    return (
        f"well:secret:v1|workspace={instance.workspace_id}|model={instance._meta.label_lower}"
        f"|field={field}|row={instance.pk}"
    ).encode()


def secret_seal(instance: models.Model, field: str, plaintext: str) -> str:
    """Encrypt `plaintext` for `instance.field`; store the returned text in that field."""
    if plaintext == "":
        return ""
    key = _data_key(instance.workspace_id)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), _field_aad(instance, field))
    return _SEALED_PREFIX + _b64encode(nonce + sealed)


def secret_open(instance: models.Model, field: str) -> str:
    """Decrypt the sealed text held in `instance.field`."""
    token = getattr(instance, field)
    if not token:
        return ""
    if not token.startswith(_SEALED_PREFIX):
        raise SecretUnreadable("not a sealed value")
    try:
        raw = _b64decode(token[len(_SEALED_PREFIX) :])
    except (binascii.Error, ValueError) as exc:
        raise SecretUnreadable("sealed value is not base64") from exc
    key = _data_key(instance.workspace_id)
    try:
        plaintext = AESGCM(key).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _field_aad(instance, field)
        )
    except InvalidTag as exc:
        raise SecretUnreadable("sealed value does not belong here or was altered") from exc
    return plaintext.decode()


# --- Secrets that belong to no workspace (TOTP seeds of allauth.mfa) --------------------------


def _system_key(master_key: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        master_key
    )


def system_seal(plaintext: str, *, purpose: str) -> str:
    current_id, keys = master_keys()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_system_key(keys[current_id], purpose)).encrypt(
        nonce, plaintext.encode(), purpose.encode()
    )
    return f"{_SEALED_PREFIX}{current_id}.{_b64encode(nonce + sealed)}"


def system_open(token: str, *, purpose: str) -> str:
    if not token.startswith(_SEALED_PREFIX):
        raise SecretUnreadable("not a sealed value")
    master_key_id, _, encoded = token[len(_SEALED_PREFIX) :].partition(".")
    _, keys = master_keys()
    if master_key_id not in keys:
        raise SecretUnreadable(f"master key {master_key_id!r} is not configured")
    raw = _b64decode(encoded)
    try:
        plaintext = AESGCM(_system_key(keys[master_key_id], purpose)).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode()
        )
    except InvalidTag as exc:
        raise SecretUnreadable("sealed value was altered") from exc
    return plaintext.decode()


def system_sealed_with_current_key(token: str) -> bool:
    current_id, _ = master_keys()
    return token.startswith(f"{_SEALED_PREFIX}{current_id}.")


# --- Rotation ------------------------------------------------------------------------------


def workspace_keys_rewrap() -> int:
    """Rewrap every data key under the current master key; returns how many changed.

    One short transaction per workspace: readers keep working throughout, because both the
    old and the new master key stay configured until the rotation is over.
    """
    current_id, _ = master_keys()
    changed = 0
    stale_ids = list(
        WorkspaceKey.objects.exclude(master_key_id=current_id).values_list("pk", flat=True)
    )
    for key_pk in stale_ids:
        with transaction.atomic():
            row = WorkspaceKey.objects.select_for_update().filter(pk=key_pk).first()
            if row is None or row.master_key_id == current_id:
                continue
            data_key = _unwrap(
                workspace_id=row.workspace_id,
                master_key_id=row.master_key_id,
                wrapped=bytes(row.wrapped_key),
            )
            row.master_key_id, row.wrapped_key = _wrap(
                workspace_id=row.workspace_id, data_key=data_key
            )
            row.rewrapped_at = timezone.now()
            row.save(update_fields=["master_key_id", "wrapped_key", "rewrapped_at"])
            changed += 1
    return changed
