"""The audit checkpoints' keys, from the settings: the workers' signing key and the
auditors' verify keys (`activities.checkpoints` signs, stores and checks; see there).

The embedded stack makes the signing key once (`<state_dir>/audit-signing-key.json`,
mode 0600); production passes `DUNNING_AUDIT_SIGNING_KEY` to the workers and
`DUNNING_AUDIT_VERIFY_KEYS` to auditors.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from activities.checkpoints import CheckpointSigner, CheckpointVerifier, SigningKeyError
from dunning.settings import Settings

KEY_FILE = "audit-signing-key.json"


def key_file(state_dir: Path) -> Path:
    return state_dir.expanduser() / KEY_FILE


def ensure_key_file(state_dir: Path) -> Path:
    """Create `<state_dir>/audit-signing-key.json` (mode 0600) with a fresh key if missing."""
    path = key_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate().private_bytes_raw()
    body = json.dumps({"private": base64.b64encode(private).decode("ascii")}, indent=2) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(body)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    return path


def _private_text(settings: Settings) -> str | None:
    if settings.audit_signing_key is not None:
        return settings.audit_signing_key.get_secret_value()
    path = key_file(settings.state_dir)
    if not path.exists():
        return None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return str(data["private"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SigningKeyError(f"{path}: not a readable audit signing key file ({exc})") from exc


def signer(settings: Settings) -> CheckpointSigner:
    """The workers' signer; refuses to go on without a key (a worker must not append
    unanchored rows)."""
    text = _private_text(settings)
    if text is None:
        raise SigningKeyError(
            "no audit signing key: set DUNNING_AUDIT_SIGNING_KEY (base64 of 32 random bytes, "
            "`openssl rand -base64 32`), or start the embedded stack (`dunning dev up` "
            f"writes {key_file(settings.state_dir)})"
        )
    return CheckpointSigner.from_text(text)


def verifier(settings: Settings) -> CheckpointVerifier | None:
    """The auditors' verifier: the verify keys and the signing key's own public key, if
    the settings give one; None when they give no key at all."""
    keys = CheckpointVerifier.from_texts(settings.audit_verify_keys).keys
    text = _private_text(settings)
    if text is not None:
        own = CheckpointSigner.from_text(text)
        keys[own.key_id] = own.public
    return CheckpointVerifier(keys.values()) if keys else None
