"""Back-office adapters behind delivery points, end to end: SOAP in, adapter, emulator over HTTP, SOAP out; and on
the asynchronous channel, a backend result that is not final polled until it is and delivered to the initiator
as the chain's RESPONSE, once."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree

from gateway.adapters.payload import PayloadSchema
from tests.test_async_channel import accepted, fetched, status_of
from tests.test_sync_faults import assert_fault
from tests.wire import assert_wire_valid, async_send, post, sync_request, wait_for

ECS = "urn:gateway:adapters:ecs"
ECERT = "urn:gateway:adapters:ecert"
PAYMENTS = "urn:gateway:adapters:payments"
PEP = ("pep", "pep-test-password")  # the sample registry's caller: sender id and password


def adapter_answer(answer: Any, adapter: str) -> etree._Element:
    """The adapter's answer element from a SendMessageResponse, checked against both schemas."""
    assert answer.status == 200, answer.body[:800]
    assert_wire_valid(answer.payload)
    data = answer.payload.find("response/responseData/data")
    element = data[0]
    PayloadSchema.of(adapter).check_answer(element)
    return element


def message_properties(message: etree._Element) -> dict[str, str]:
    """An async message's ``messageInfo/properties`` as a dict."""
    return {p.findtext("key"): p.findtext("value") for p in message.findall("messageInfo/properties")}


def only_response(async_url: str, service_id: str, request_id: str, correlation_id: str) -> etree._Element:
    """The chain's one RESPONSE, which ``pep`` fetches once the REQUEST is delivered; checks that a later fetch
    finds no other."""
    wait_for(lambda: status_of(async_url, request_id, *PEP) == "DELIVERED", seconds=20)
    messages = fetched(async_url, service_id, *PEP, correlation_id=correlation_id)
    assert len(messages) == 1
    message = messages[0]
    assert message.findtext("messageInfo/messageType") == "RESPONSE"
    assert message.findtext("messageInfo/correlationId") == correlation_id
    time.sleep(0.3)
    again = fetched(async_url, service_id, *PEP, correlation_id=correlation_id)
    assert [m.findtext("messageInfo/messageId") for m in again] == [message.findtext("messageInfo/messageId")]
    return message


def test_ecs_benefit_check_through_the_sync_channel(sync_url: str, backends: Any) -> None:
    data = (f'<data><CheckClientBenefitsRequest xmlns="{ECS}"><serviceId>1</serviceId>'
            "<organizationTerminalId>11</organizationTerminalId><clientCode>AAABBBCCC</clientCode></CheckClientBenefitsRequest></data>")
    answer = post(sync_url, sync_request(service_id="EcsBenefits", data=data))
    element = adapter_answer(answer, "ecs")
    assert element.tag == f"{{{ECS}}}CheckClientBenefitsResponse"
    assert element.findtext(f"{{{ECS}}}outcome") == "BENEFIT_FOUND"
    assert answer.payload.findtext("response/responseInfo/status/code") == "OK"


def test_ecert_detailed_statement_through_the_sync_channel(sync_url: str, backends: Any) -> None:
    data = (f'<data><GetDetailedStatementRequest xmlns="{ECERT}"><certificateNumber>2021080713257902301000001'
            "</certificateNumber></GetDetailedStatementRequest></data>")
    element = adapter_answer(post(sync_url, sync_request(service_id="Ecert", data=data)), "ecert")
    assert element.tag == f"{{{ECERT}}}GetDetailedStatementResponse"
    assert "2021080713257902301000001" in etree.tostring(element).decode()


def test_payments_balance_through_the_sync_channel(sync_url: str, backends: Any) -> None:
    data = f'<data><BalanceRequest xmlns="{PAYMENTS}"/></data>'
    element = adapter_answer(post(sync_url, sync_request(service_id="Payments", data=data)), "payments")
    assert element.tag == f"{{{PAYMENTS}}}BalanceResponse"


def test_data_not_of_the_adapters_schema_is_refused_before_the_backend(sync_url: str, backends: Any) -> None:
    before = len(backends["payments"].requests_to("balance"))
    data = f'<data><BalanceRequest xmlns="{PAYMENTS}"><unexpected/></BalanceRequest></data>'
    assert_fault(post(sync_url, sync_request(service_id="Payments", data=data)), "SCE001", "Client")
    foreign = '<data><BalanceRequest xmlns="urn:other"/></data>'
    assert_fault(post(sync_url, sync_request(service_id="Payments", data=foreign)), "SCE001", "Client")
    assert len(backends["payments"].requests_to("balance")) == before


def test_a_backend_that_is_down_is_a_provider_fault(sync_url: str, backends: Any) -> None:
    backends["payments"].set_switches(down=True)
    data = f'<data><BalanceRequest xmlns="{PAYMENTS}"/></data>'
    assert_fault(post(sync_url, sync_request(service_id="Payments", data=data)), "SCE009", "Server")


def pay_request(payment_key: str) -> str:
    return (f'<data><PayRequest xmlns="{PAYMENTS}"><serviceId>P1011</serviceId><account>7770017711</account>'
            f"<paymentKey>{payment_key}</paymentKey><agentTransactionDate>2026-11-22T12:00:00</agentTransactionDate>"
            "<amountTo>200</amountTo><amountFrom>200.00</amountFrom></PayRequest></data>")


def test_a_payment_non_final_three_times_reaches_the_initiator_once(async_url: str, backends: Any) -> None:
    payments = backends["payments"]
    payments.set_switches(non_final_polls=3)
    key = f"e2e-{uuid.uuid4()}"
    request_id, correlation_id = accepted(post(async_url, async_send("PaymentsAsync", data=pay_request(key))))
    wait_for(lambda: status_of(async_url, request_id, "pep", "pep-test-password") == "DELIVERED", seconds=20)
    responses = fetched(async_url, "PaymentsAsync", "pep", "pep-test-password", correlation_id=correlation_id)
    assert len(responses) == 1
    message = responses[0]
    assert message.findtext("messageInfo/messageType") == "RESPONSE"
    answer = message.find("messageData/data")[0]
    PayloadSchema.of("payments").check_answer(answer)
    assert answer.findtext(f"{{{PAYMENTS}}}final") == "true"
    assert message_properties(message)["adapterStatusCode"] == "OK"
    # The backend was asked four times with the same payment and made it once.
    sent = [r for r in payments.requests_to("pay") if key_of(r) == answer.findtext(f"{{{PAYMENTS}}}agentTransactionId")]
    assert len(sent) == 4 and len({r.body for r in sent}) == 1
    assert sum(1 for p in payments.payments() if str(p.agent_transaction_id) == answer.findtext(f"{{{PAYMENTS}}}agentTransactionId")) == 1
    # No second answer arrives later.
    time.sleep(0.5)
    again = fetched(async_url, "PaymentsAsync", "pep", "pep-test-password", correlation_id=correlation_id)
    assert [m.findtext("messageInfo/messageId") for m in again] == [message.findtext("messageInfo/messageId")]


def key_of(request: Any) -> str:
    import json

    return str(json.loads(request.body)["agentTransactionId"])


def test_an_ecert_task_result_is_delivered_as_the_response(async_url: str, backends: Any) -> None:
    data = (f'<data><GetDetailedStatementRequest xmlns="{ECERT}"><certificateNumber>0000000000000000000000000'
            "</certificateNumber></GetDetailedStatementRequest></data>")
    request_id, correlation_id = accepted(post(async_url, async_send("EcertAsync", data=data)))
    wait_for(lambda: status_of(async_url, request_id, "pep", "pep-test-password") == "DELIVERED", seconds=20)
    responses = fetched(async_url, "EcertAsync", "pep", "pep-test-password", correlation_id=correlation_id)
    assert len(responses) == 1
    fault = responses[0].find("messageData/data")[0]
    assert fault.tag == "{urn:gateway:adapters}AdapterFault"
    assert fault.findtext("{urn:gateway:adapters}errorCode") == "SCE011"
    assert fault.findtext("{urn:gateway:adapters}backendCode", "").startswith("EC")


def test_an_adapter_point_switched_off_by_its_breaker_comes_back_with_a_probe(
    async_url: str, backends: Any, delivery_worker: Any, engine: Any
) -> None:
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from gateway.store.models import DeliveryPointState

    backends["payments"].set_switches(down=True)
    balance = f'<data><BalanceRequest xmlns="{PAYMENTS}"/></data>'
    failing = [accepted(post(async_url, async_send("PaymentsBreaker", data=balance)))[0] for _ in range(2)]
    for message_id in failing:
        wait_for(lambda: status_of(async_url, message_id, "pep", "pep-test-password") == "NOT_DELIVERED", seconds=20)
    queued, correlation_id = accepted(post(async_url, async_send("PaymentsBreaker", data=balance)))
    wait_for(lambda: status_of(async_url, queued, "pep", "pep-test-password") == "DELIVERY_STOPPED", seconds=20)
    backends["payments"].set_switches(down=False)
    with engine.begin() as connection:
        connection.execute(update(DeliveryPointState).where(DeliveryPointState.delivery_point_id == 45)
                           .values(probe_after=datetime.now(UTC) - timedelta(seconds=1)))
    delivery_worker.probe()
    wait_for(lambda: status_of(async_url, queued, "pep", "pep-test-password") == "DELIVERED", seconds=20)
    with Session(engine) as session:
        assert not session.get(DeliveryPointState, 45).switched_off
    [response] = fetched(async_url, "PaymentsBreaker", "pep", "pep-test-password", correlation_id=correlation_id)
    assert response.find("messageData/data")[0].tag == f"{{{PAYMENTS}}}BalanceResponse"
