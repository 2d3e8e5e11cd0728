"""Temporal payloads are encrypted: the codec, its keys, the codec server, and the bytes
the dev server actually stores.

The byte search runs cases with distinctive borrowers to completion on the private
stack (encrypted with the key `dunning dev up` made), then reads the server's SQLite
file and finds none of their names or phone numbers in any form; a control workflow
started by a plain client on the same server is found by the same search, so the
search is known to see what the server wrote.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import phonenumbers
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

import starter
from dunning import codec
from dunning.audit.replay import replay_histories
from dunning.codec_server import CodecServer
from dunning.localstack.net import free_port
from dunning.settings import Settings
from dunning.temporal_client import data_converter
from schemas.commands import Payment
from schemas.status import CaseStatus
from tests.factories import TOTAL, case_input, fast_policy
from tests.test_replay import _all_committed
from workflows.loan_collection import LoanCollection

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()


def _codec(keys: dict[str, str], active: str) -> codec.EncryptionCodec:
    return codec.EncryptionCodec(codec.Keyring.from_text(keys, active))


def _plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


# --- the codec ----------------------------------------------------------------------


async def test_roundtrip_hides_the_payload_and_restores_it_exactly() -> None:
    c = _codec({"k1": K1}, "k1")
    original = _plain('{"name": "Wang Xiaoming"}')
    [sealed] = await c.encode([original])
    assert sealed.metadata["encoding"] == b"binary/encrypted"
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert b"Wang" not in sealed.SerializeToString()
    assert len(sealed.data) > codec.NONCE_BYTES
    [again] = await c.encode([original])
    assert again.data != sealed.data, "a fresh nonce per payload"
    assert await c.decode([sealed, again]) == [original, original]


async def test_rotation_old_key_decrypts_new_key_encrypts() -> None:
    before = _codec({"k1": K1}, "k1")
    after = _codec({"k1": K1, "k2": K2}, "k2")
    [old] = await before.encode([_plain("old")])
    [new] = await after.encode([_plain("new")])
    assert new.metadata["encryption-key-id"] == b"k2"
    assert await after.decode([old, new]) == [_plain("old"), _plain("new")]
    with pytest.raises(codec.CodecError, match="'k2', which is not configured"):
        await before.decode([new])


async def test_unknown_key_id_fails_clearly() -> None:
    [sealed] = await _codec({"other": K2}, "other").encode([_plain("x")])
    with pytest.raises(codec.CodecError, match=r"codec key 'other'.*known: k1"):
        await _codec({"k1": K1}, "k1").decode([sealed])


async def test_unencrypted_payloads_pass_through() -> None:
    plain = [_plain('"a"'), Payload(metadata={"encoding": b"binary/null"})]
    assert await _codec({"k1": K1}, "k1").decode(plain) == plain


async def test_tampered_ciphertext_or_key_id_fails() -> None:
    c = _codec({"k1": K1, "k2": K2}, "k1")
    [sealed] = await c.encode([_plain("amount 100")])
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 1
    changed = Payload(metadata=dict(sealed.metadata), data=bytes(flipped))
    with pytest.raises(codec.CodecError, match="failed authentication"):
        await c.decode([changed])
    relabelled = Payload(metadata={**sealed.metadata, "encryption-key-id": b"k2"}, data=sealed.data)
    with pytest.raises(codec.CodecError, match="failed authentication"):
        await c.decode([relabelled])
    truncated = Payload(metadata=dict(sealed.metadata), data=sealed.data[:5])
    with pytest.raises(codec.CodecError, match="truncated"):
        await c.decode([truncated])


# --- keys from settings ---------------------------------------------------------------


def test_keys_come_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DUNNING_CODEC_KEYS", json.dumps({"k1": K1, "k2": K2}))
    monkeypatch.setenv("DUNNING_CODEC_KEY_ID", "k2")
    settings = Settings(state_dir=tmp_path)
    assert "1111" not in repr(settings) and K1 not in repr(settings), "keys are secrets"
    assert codec.keyring(settings) == codec.Keyring({"k1": b"1" * 32, "k2": b"2" * 32}, "k2")
    converter = data_converter(settings)
    assert isinstance(converter.payload_codec, codec.EncryptionCodec)
    assert converter.payload_codec.active_key_id == "k2"


def test_bad_or_missing_keys_are_refused_and_encryption_can_be_off(tmp_path: Path) -> None:
    def settings(**kw: Any) -> Settings:
        return Settings(state_dir=tmp_path, **kw)

    with pytest.raises(codec.KeyConfigError, match="no key is configured"):
        data_converter(settings())
    with pytest.raises(codec.KeyConfigError, match="16 bytes"):
        codec.keyring(settings(codec_keys={"k": base64.b64encode(bytes(16)).decode()}))
    with pytest.raises(codec.KeyConfigError, match="not valid base64"):
        codec.keyring(settings(codec_keys={"k": "not base64!"}))
    with pytest.raises(codec.KeyConfigError, match="name the one that encrypts"):
        codec.keyring(settings(codec_keys={"a": K1, "b": K2}))
    with pytest.raises(codec.KeyConfigError, match="'c' is not among the keys"):
        codec.keyring(settings(codec_keys={"a": K1}, codec_key_id="c"))
    assert data_converter(settings(encryption=False)) is pydantic_data_converter


def test_the_embedded_stack_keeps_its_key_in_a_private_file(stack_settings: Settings) -> None:
    path = codec.key_file(stack_settings.state_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_text()
    assert codec.ensure_key_file(stack_settings.state_dir) == path
    assert path.read_text() == before, "made once, kept"
    found = codec.keyring(stack_settings)
    assert found is not None and found.active == json.loads(before)["active"]


async def test_committed_unencrypted_histories_replay_with_the_encrypting_converter(
    stack_settings: Settings,
) -> None:
    reports = await replay_histories(
        _all_committed(), data_converter=data_converter(stack_settings)
    )
    assert reports and all(r.deterministic for r in reports), reports


# --- the codec server -------------------------------------------------------------------

TOKEN = "s3cret-token"
UI = "http://127.0.0.1:8233"


@pytest.fixture
def codec_server() -> Iterator[str]:
    server = CodecServer(("127.0.0.1", free_port()), _codec({"k1": K1}, "k1"), TOKEN, [UI])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _wire(payload: Payload) -> dict[str, Any]:
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


async def test_codec_server_decodes_for_the_bearer_of_the_token_only(codec_server: str) -> None:
    [sealed] = await _codec({"k1": K1}, "k1").encode([_plain('"Wang Xiaoming"')])
    body = {"payloads": [_wire(sealed)]}
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default", "Origin": UI}
    async with httpx.AsyncClient(base_url=codec_server, timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = await http.post("/decode", json=body, headers=headers)
            assert refused.status_code == 401
            assert "Wang" not in refused.text

        decoded = await http.post("/decode", json=body, headers=auth)
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["Access-Control-Allow-Origin"] == UI
        [out] = decoded.json()["payloads"]
        assert base64.b64decode(out["data"]) == b'"Wang Xiaoming"'
        assert base64.b64decode(out["metadata"]["encoding"]) == b"json/plain"

        encoded = await http.post("/encode", json=decoded.json(), headers=auth)
        [back] = encoded.json()["payloads"]
        assert base64.b64decode(back["metadata"]["encoding"]) == b"binary/encrypted"
        assert b"Wang" not in base64.b64decode(back["data"])

        preflight = await http.options(
            "/decode",
            headers={"Origin": UI, "Access-Control-Request-Headers": "authorization"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == UI
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        elsewhere = await http.options("/decode", headers={"Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in elsewhere.headers

        bad = await http.post("/decode", content=b"not json", headers=auth)
        assert bad.status_code == 400


# --- what the dev server stores ----------------------------------------------------------

BORROWERS = [
    ("Zebulon Quixworth-Abernathy", "+86 139 7531 8642", "CN"),
    ("欧阳娜娜", "+86 186 2468 1357", "CN"),
    ("Ottilie Vranckenpeeters", "+1 415 555 0132", "US"),
]
ADDRESS = "77 Marigold Esplanade, Sunnyvale"
CONTACT = ("Hieronymus Blaauwbroek", "+86 137 2468 9753")  # everyone's emergency contact


def _needles(name: str, phone: str) -> list[bytes]:
    """The name and every digit form of the phone a history could hold."""
    parsed = phonenumbers.parse(phone)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    national_digits = "".join(c for c in national if c.isdigit())
    forms = {name, e164, e164.lstrip("+"), national_digits, str(parsed.national_number)}
    return [f.encode("utf-8") for f in forms] + [name.encode("utf-16-le")]


def _server_bytes(state_dir: Path) -> bytes:
    found = [p for p in state_dir.glob("temporal.db*") if p.is_file()]
    assert any(p.name == "temporal.db" for p in found), found
    contents = []
    for path in found:
        try:
            contents.append(path.read_bytes())
        except FileNotFoundError:
            # A rollback journal lives only while a write is in progress: once it is
            # gone, what it held is in the database file, which is read too.
            assert path.name != "temporal.db", path
    return b"".join(contents)


async def test_the_servers_database_holds_no_name_or_phone(
    dev_client: Client,
    dev_worker: Worker,
    stack_settings: Settings,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:
    assert isinstance(dev_client.data_converter.payload_codec, codec.EncryptionCodec)
    policy = fast_policy(timedelta(milliseconds=250))
    tag = uuid.uuid4().hex[:8]
    handles = []
    for n, (name, phone, country) in enumerate(BORROWERS):
        borrower = {
            "name": name,
            "phones": [phone],
            "country": country,
            "address": ADDRESS,
            "emergency_contacts": [{"name": CONTACT[0], "phone": CONTACT[1]}],
        }
        case = case_input(f"L-enc-{tag}-{n}", borrower=borrower)
        params = starter.workflow_input(case).model_copy(update={"policy": policy})
        handles.append(
            await dev_client.start_workflow(
                LoanCollection.run, params, id=case.case_id, task_queue=task_queue
            )
        )

    async def contacted_then_paid(handle: Any) -> CaseStatus:
        for _ in range(100):  # until a message went out: the phone is in an activity's input
            status: CaseStatus = await handle.query(LoanCollection.status)
            if status.counters.get("sms", 0) > 0:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"{handle.id}: no contact attempted")
        await handle.execute_update(
            LoanCollection.record_payment, Payment(amount=TOTAL, reference="PAY-ENC")
        )
        result: CaseStatus = await asyncio.wait_for(handle.result(), 30)
        return result

    finals = await asyncio.gather(*(contacted_then_paid(h) for h in handles))
    assert all(f.closed_reason == "paid" for f in finals)

    # Control: a plain client's input on the same server, found by the same search.
    control_name = f"Control Person {tag}"
    plain = await Client.connect(
        stack_settings.temporal_address,
        namespace=stack_settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    control = await plain.start_workflow(
        "EncryptionControl",
        {"name": control_name, "phones": ["+8615012345678"]},
        id=f"encryption-control-{tag}",
        task_queue=f"nobody-{tag}",  # no worker: the input sits in the started event
    )
    try:
        for _ in range(50):
            stored = _server_bytes(stack_settings.state_dir)
            if control_name.encode() in stored:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the control input never reached the server's files")
        assert b"+8615012345678" in stored
        for name, phone, _ in [*BORROWERS, (*CONTACT, "CN")]:
            for needle in _needles(name, phone):
                assert needle not in stored, f"{needle!r} is in the server's database"
        assert ADDRESS.encode() not in stored
        # Case ids and search attributes stay readable (they hold no personal data).
        assert handles[0].id.encode() in stored
    finally:
        await control.terminate("control done")

    # The audit log holds the personal data by design (it is the case file).
    opened = await pool.fetchval(
        "SELECT payload::text FROM audit_events WHERE case_id = $1 AND seq = 1", handles[0].id
    )
    assert BORROWERS[0][0] in opened and "+8613975318642" in opened


def test_key_file_is_not_in_the_repository() -> None:
    ignored = (Path(__file__).resolve().parent.parent / ".gitignore").read_text()
    assert ".dunning" in ignored
    assert not os.path.exists(Path(__file__).resolve().parent.parent / codec.KEY_FILE)


async def test_a_browser_signs_in_once_and_the_ui_decodes_with_its_session(
    codec_server: str,
) -> None:
    """The Temporal UI sends no bearer token without its own sign-in; with *Include
    cross-origin credentials* it sends the codec server's session cookie instead."""
    [sealed] = await _codec({"k1": K1}, "k1").encode([_plain('"Wang Xiaoming"')])
    body = {"payloads": [_wire(sealed)]}
    ui = {"Origin": UI, "X-Namespace": "default"}
    async with httpx.AsyncClient(base_url=codec_server, timeout=10) as http:
        form = await http.get("/login")
        assert form.status_code == 200 and 'name="token"' in form.text

        wrong = await http.post("/login", data={"token": "guess"})
        assert wrong.status_code == 401 and "dunning_codec_session" not in http.cookies
        forged = await http.post(
            "/decode", json=body, headers={**ui, "Cookie": "dunning_codec_session=forged"}
        )
        assert forged.status_code == 401 and "Wang" not in forged.text

        signed_in = await http.post("/login", data={"token": TOKEN})
        assert signed_in.status_code == 303, signed_in.text
        cookie = signed_in.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        decoded = await http.post("/decode", json=body, headers=ui)  # the cookie, no token
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["Access-Control-Allow-Credentials"] == "true"
        assert base64.b64decode(decoded.json()["payloads"][0]["data"]) == b'"Wang Xiaoming"'

        await http.post("/logout")
        session = signed_in.cookies["dunning_codec_session"]
        after = await http.post(
            "/decode", json=body, headers={**ui, "Cookie": f"dunning_codec_session={session}"}
        )
        assert after.status_code == 401, "a signed-out session decodes nothing"
