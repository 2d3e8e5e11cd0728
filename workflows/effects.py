"""Turning a performed effect's receipt into its domain event. Pure."""

from __future__ import annotations

from datetime import datetime

from schemas.activity_io import ProviderReceipt
from schemas.events import ContactAttempted, Event, FieldVisitScheduled, HandedToLegal
from workflows.decide import Effect

ACTIVITY_FOR_CHANNEL = {
    "sms": "send_sms",
    "call": "place_call",
    "field_visit": "schedule_field_visit",
    "legal_handoff": "hand_to_legal",
    "third_party_sms": "send_sms",
}


def event_for(effect: Effect, receipt: ProviderReceipt, now: datetime) -> Event:
    if effect.channel == "field_visit":
        return FieldVisitScheduled(
            at=now,
            stage=effect.stage,
            action_index=effect.action_index,
            occurrence=effect.occurrence,
            idempotency_key=effect.idempotency_key,
            provider_ref=receipt.provider_ref,
        )
    if effect.channel == "legal_handoff":
        return HandedToLegal(
            at=now,
            stage=effect.stage,
            action_index=effect.action_index,
            idempotency_key=effect.idempotency_key,
            provider_ref=receipt.provider_ref,
        )
    return ContactAttempted(
        at=now,
        channel=effect.channel,
        stage=effect.stage,
        action_index=effect.action_index,
        occurrence=effect.occurrence,
        phone_index=effect.phone_index,
        third_party=effect.third_party,
        template=effect.template,
        idempotency_key=effect.idempotency_key,
        provider_ref=receipt.provider_ref,
        outcome=receipt.outcome,
    )
