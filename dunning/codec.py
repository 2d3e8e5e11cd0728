"""Encryption of Temporal payloads: AES-256-GCM, keys by id, rotation by adding a key.

Temporal stores every workflow input, result, signal, update, query answer, activity
argument and memo in its history. A case's input holds the borrower's name, phones
and address, so each payload is encrypted on the client (workers, CLI, replayer)
before it leaves the process: the server, its database and the UI see ciphertext.

An encrypted payload has `encoding: binary/encrypted`, `encryption-key-id: <id>` and
`data = nonce (12 bytes) + AES-256-GCM(serialized inner Payload)`, the key id bound
as associated data. Decoding passes through payloads without that encoding, so
histories recorded before encryption (the committed test histories among them) still
replay. A payload under a key id this process does not hold, or one that fails
authentication (changed, truncated), is an error, never silently passed on.

Keys: `Settings.codec_keys` (id -> base64 of 32 bytes, `DUNNING_CODEC_KEYS` as JSON)
and `Settings.codec_key_id`, the key that encrypts; the other keys only decrypt, which
is how a key is rotated. With no keys in the settings, the embedded stack's key file
`<state_dir>/codec-keys.json` (made by `dunning dev up`) is used.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from dunning.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
KEY_FILE = "codec-keys.json"


class CodecError(ValueError):
    """A payload could not be decrypted: unknown key id, or not authentic."""


class KeyConfigError(RuntimeError):
    """The settings do not give a usable set of keys."""


def decode_key(key_id: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyConfigError(f"codec key {key_id!r} is not valid base64") from exc
    if len(raw) != KEY_BYTES:
        raise KeyConfigError(
            f"codec key {key_id!r} is {len(raw)} bytes; AES-256 needs {KEY_BYTES} "
            "(generate one with `openssl rand -base64 32`)"
        )
    return raw


def new_key() -> str:
    """A fresh AES-256 key, base64."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


@dataclass(frozen=True)
class Keyring:
    """Keys by id; `active` encrypts, all decrypt."""

    keys: Mapping[str, bytes]
    active: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyConfigError("no codec keys")
        if self.active not in self.keys:
            raise KeyConfigError(
                f"the active codec key id {self.active!r} is not among the keys "
                f"({', '.join(sorted(self.keys))})"
            )
        for key_id, key in self.keys.items():
            if not key_id or not key_id.isascii() or not key_id.isprintable():
                raise KeyConfigError(f"codec key id {key_id!r} must be printable ASCII")
            if len(key) != KEY_BYTES:
                raise KeyConfigError(f"codec key {key_id!r} must be {KEY_BYTES} bytes")

    @classmethod
    def from_text(cls, keys: Mapping[str, str], active: str | None) -> Keyring:
        decoded = {key_id: decode_key(key_id, text) for key_id, text in keys.items()}
        if active is None:
            if len(decoded) != 1:
                raise KeyConfigError(
                    "several codec keys and no DUNNING_CODEC_KEY_ID: name the one that encrypts"
                )
            [active] = decoded
        return cls(decoded, active)


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each serialized payload (see the module's docstring)."""

    def __init__(self, keyring: Keyring) -> None:
        self._active = keyring.active
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    @property
    def active_key_id(self) -> str:
        return self._active

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_sync(payloads)

    def encode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        key_id = self._active
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(), key_id.encode("ascii")
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_META: key_id.encode("ascii")},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # not encrypted (recorded before encryption, or by a plain client)
        key_id = payload.metadata.get(KEY_ID_META, b"").decode("ascii", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(
                f"payload encrypted with codec key {key_id!r}, which is not configured "
                f"(known: {', '.join(sorted(self._ciphers))}); add it to DUNNING_CODEC_KEYS"
            )
        data = payload.data
        if len(data) <= NONCE_BYTES:
            raise CodecError(f"encrypted payload (key {key_id!r}) is truncated")
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode("ascii"))
        except InvalidTag as exc:
            raise CodecError(
                f"encrypted payload (key {key_id!r}) failed authentication: changed or corrupt"
            ) from exc
        return Payload.FromString(plain)


# The embedded stack's key file.


def key_file(state_dir: Path) -> Path:
    return state_dir.expanduser() / KEY_FILE


def ensure_key_file(state_dir: Path) -> Path:
    """Create `<state_dir>/codec-keys.json` (mode 0600) with one fresh key if missing."""
    path = key_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    key_id = f"local-{secrets.token_hex(4)}"  # unique: another stack's key is told apart
    body = json.dumps({"active": key_id, "keys": {key_id: new_key()}}, indent=2) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(body)
    with contextlib.suppress(OSError):  # the embedded servers may run as another user
        os.chmod(path, 0o600)
    return path


def _read_key_file(path: Path) -> tuple[dict[str, str], str | None]:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        keys = {str(k): str(v) for k, v in data["keys"].items()}
        active = data.get("active")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyConfigError(f"{path}: not a readable codec key file ({exc})") from exc
    return keys, None if active is None else str(active)


def keyring(settings: Settings) -> Keyring | None:
    """The keys these settings give, or None when encryption is off."""
    if not settings.encryption:
        return None
    if settings.codec_keys:
        keys = {k: v.get_secret_value() for k, v in settings.codec_keys.items()}
        return Keyring.from_text(keys, settings.codec_key_id)
    path = key_file(settings.state_dir)
    if not path.exists():
        raise KeyConfigError(
            "payload encryption is on but no key is configured: set DUNNING_CODEC_KEYS and "
            f"DUNNING_CODEC_KEY_ID, or start the embedded stack (`dunning dev up` writes {path}); "
            "DUNNING_ENCRYPTION=false turns encryption off"
        )
    keys, active = _read_key_file(path)
    return Keyring.from_text(keys, settings.codec_key_id or active)


def codec(settings: Settings) -> EncryptionCodec | None:
    found = keyring(settings)
    return None if found is None else EncryptionCodec(found)
