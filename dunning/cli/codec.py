"""`dunning codec-server`: decrypt payloads for the Temporal UI and CLI (dunning.codec_server)."""

from __future__ import annotations

import typer

from dunning.cli.common import console, fail, settings


def codec_server(
    port: int = typer.Option(8234, help="port to listen on"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="an origin allowed by CORS (the Temporal UI's), repeatable"
    ),
) -> None:
    """Serve Temporal's codec server protocol (POST /encode, /decode) with the payload keys.

    Requires DUNNING_CODEC_SERVER_TOKEN; callers send `Authorization: Bearer <token>`.
    """
    from dunning.codec import KeyConfigError, codec
    from dunning.codec_server import CodecServer, serve

    current = settings()
    if current.codec_server_token is None or not current.codec_server_token.get_secret_value():
        fail("set DUNNING_CODEC_SERVER_TOKEN: the codec server refuses to run without a token")
    try:
        found = codec(current)
    except KeyConfigError as exc:
        fail(str(exc))
    if found is None:
        fail("payload encryption is off (DUNNING_ENCRYPTION=false): nothing to decode")
    server = CodecServer(
        (host, port), found, current.codec_server_token.get_secret_value(), cors_origin
    )
    console.print(
        f"codec server on http://{host}:{server.server_address[1]} "
        f"(encrypting with key {found.active_key_id!r}; CORS: {', '.join(cors_origin) or 'none'})"
    )
    try:
        serve(server)
    except KeyboardInterrupt:
        console.print("stopped")
