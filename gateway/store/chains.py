"""New rows of the message store made for a chain: any accepted message's row, and the provider's RESPONSE the
gateway makes on a provider's behalf (an adapter's final answer), which the delivery worker stores."""
from __future__ import annotations

import uuid

from lxml import etree

from gateway.soap.values import format_datetime, new_session_id
from gateway.store.messages import ON_DELIVERY, Acceptance, StoredMessage, journal_record, now
from registry.snapshot import RegistrySnapshot


def message_row(data: etree._Element, **fields: object) -> dict[str, object]:
    """A new message of the store, on delivery from now."""
    accepted_at = now()
    return {
        **fields,
        "data": etree.tostring(data, encoding="unicode"),
        "state": ON_DELIVERY,
        "fetched": False,
        "accepted_at": accepted_at,
        "state_changed_at": accepted_at,
    }


def chain_response(
    opening: StoredMessage, data: etree._Element, properties: list[list[str]], snapshot: RegistrySnapshot
) -> Acceptance:
    """The provider's RESPONSE to the REQUEST ``opening``, made by the gateway on the provider's behalf (an
    adapter's final answer). Its messageId is derived from the request's, so making it twice (a worker that
    died between storing it and finishing its task) cannot deliver two different answers."""
    initiator = snapshot.senders.get(opening.sender_id)
    point_id = initiator.response_delivery_point_id if initiator else None
    message = message_row(
        message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:gateway:adapter-response:{opening.message_id}")),
        correlation_id=opening.correlation_id,
        service_id=opening.service_id,
        message_type="RESPONSE",
        route_id=opening.route_id,
        message_date=format_datetime(now()),
        sender_id=opening.recipient_id,
        recipient_id=opening.sender_id,
        properties=properties,
        data=data,
        delivery_mode="PUSH" if point_id is not None else "PULL",
        session_id=new_session_id(),
    )
    return Acceptance(message=message, journal=journal_record(message, ON_DELIVERY, received_at=message["accepted_at"]), push_point_id=point_id)
