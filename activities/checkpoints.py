"""Signed head checkpoints of the audit log: an anchor a database superuser cannot forge.

The hash chain shows a changed row, but rows removed from the end of a case, or a
tail rewritten with fresh hashes, leave a valid chain. So every append also records
the head it left, (case, seq, hash), signed with Ed25519 by the worker
(`audit_checkpoints`, in the same transaction as the rows). The private key is the
worker's (`DUNNING_AUDIT_SIGNING_KEY`), never the database's; auditors check with the
public key (`DUNNING_AUDIT_VERIFY_KEYS`). A superuser can delete checkpoints, not make
one: `dunning audit verify` reports a checkpoint whose row is gone or differs, and a
head row without one (every append ends at a checkpoint), so a cut must fall on a
batch's end and take the later checkpoints with it; the live anchor in Temporal's
history (docs/architecture.md, "Audit") catches that one too.

Signed bytes: the canonical JSON (`activities.chain.canonical`) of
`{"purpose": "dunning audit checkpoint", "case_id", "seq", "hash"}`; the signature is
stored in base64, with the key id: the first 16 hex digits of the SHA-256 of the raw
32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from activities.chain import canonical

PURPOSE = "dunning audit checkpoint"


class SigningKeyError(RuntimeError):
    """No usable checkpoint signing key (or verify key) in the settings."""


def message(case_id: str, seq: int, head_hash: str) -> bytes:
    document = {"purpose": PURPOSE, "case_id": case_id, "seq": seq, "hash": head_hash}
    return canonical(document).encode("utf-8")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def public_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw_public(key)).decode("ascii")


def _decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningKeyError(f"{what} is not valid base64") from exc
    if len(raw) != 32:
        raise SigningKeyError(f"{what} must be 32 bytes, not {len(raw)}")
    return raw


class CheckpointSigner:
    """Signs heads with the worker's private key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def from_text(cls, text: str) -> CheckpointSigner:
        return cls(Ed25519PrivateKey.from_private_bytes(_decode(text, "the audit signing key")))

    def sign(self, case_id: str, seq: int, head_hash: str) -> str:
        signature = self._private.sign(message(case_id, seq, head_hash))
        return base64.b64encode(signature).decode("ascii")


@dataclass(frozen=True)
class Checkpoint:
    case_id: str
    seq: int
    hash: str
    key_id: str
    signature: str
    signed_at: datetime


class CheckpointVerifier:
    """Checks checkpoints against the public keys auditors were given."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self.keys = {key_id(key): key for key in keys}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CheckpointVerifier:
        return cls(
            Ed25519PublicKey.from_public_bytes(_decode(text, "an audit verify key"))
            for text in texts
        )

    def problem(self, checkpoint: Checkpoint) -> str | None:
        """Why the checkpoint is not to be trusted, or None when its signature holds."""
        key = self.keys.get(checkpoint.key_id)
        if key is None:
            return f"signed by key {checkpoint.key_id}, which is not a verify key"
        try:
            signature = base64.b64decode(checkpoint.signature, validate=True)
            key.verify(signature, message(checkpoint.case_id, checkpoint.seq, checkpoint.hash))
        except (InvalidSignature, binascii.Error, ValueError):
            return "signature does not verify: the checkpoint was forged or changed"
        return None


# --- storage -----------------------------------------------------------------------------

INSERT = """
INSERT INTO audit_checkpoints (case_id, seq, hash, key_id, signature)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (case_id, seq) DO NOTHING
"""


async def record(
    conn: asyncpg.Connection, sign: CheckpointSigner, case_id: str, seq: int, head_hash: str
) -> None:
    """Sign and store the head (a retried append finds it there and leaves it)."""
    await conn.execute(
        INSERT, case_id, seq, head_hash, sign.key_id, sign.sign(case_id, seq, head_hash)
    )


async def read(conn: asyncpg.Connection, case_id: str) -> list[Checkpoint]:
    rows = await conn.fetch(
        "SELECT case_id, seq, hash, key_id, signature, signed_at FROM audit_checkpoints "
        "WHERE case_id = $1 ORDER BY seq",
        case_id,
    )
    return [Checkpoint(**dict(row)) for row in rows]


async def since(conn: asyncpg.Connection) -> datetime | None:
    """When checkpoints began: rows recorded since must end at one."""
    found: datetime | None = await conn.fetchval(
        "SELECT applied_at FROM schema_migrations WHERE version = '0005_audit_checkpoints'"
    )
    return found


async def case_ids(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT DISTINCT case_id FROM audit_checkpoints ORDER BY case_id")
    return [row["case_id"] for row in rows]
