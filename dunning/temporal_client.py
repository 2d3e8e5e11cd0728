"""One way to connect to Temporal: the pydantic data converter, payloads encrypted.

`data_converter(settings)` is what every client, worker and replayer uses: the
pydantic converter with the AES-256-GCM codec of `dunning.codec` when encryption is
on (the default), and failures' messages and stack traces encoded too (they can
quote input). Decoding passes unencrypted payloads through, so older histories read.
"""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from dunning.codec import codec
from dunning.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    payload_codec = codec(settings)
    if payload_codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=payload_codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
