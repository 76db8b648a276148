"""Each real-world deviation of shep-wire.md §2.8 is accepted, and what the gateway emits stays strict."""
from __future__ import annotations

import pytest

from emulators.sync_provider import SyncProviderEmulator
from tests.wire import SOAP_ENV, SYNC_TYPES, assert_wire_valid, body_child, post, sync_request

XSI = "http://www.w3.org/2001/XMLSchema-instance"


def accepted(sync_url: str, provider: SyncProviderEmulator, envelope: str, **post_options: object):
    answer = post(sync_url, envelope, **post_options)
    assert answer.status == 200, answer.body[:800]
    assert answer.payload.findtext("response/responseInfo/status/code") == "SCSS001"
    assert_wire_valid(answer.payload)
    sent = body_child(provider.received[-1].body)
    assert_wire_valid(sent)
    return sent


def test_empty_optional_elements(sync_url: str, provider: SyncProviderEmulator) -> None:
    envelope = (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><ns2:SendMessage xmlns:ns2="{SYNC_TYPES}">'
        "<request><requestInfo><messageId>m-1</messageId><correlationId></correlationId>"
        "<serviceId>GbdflPersonInfo</serviceId><messageDate>2026-11-22T10:00:00</messageDate><routeId/>"
        "<sender><senderId>pep</senderId><password>pep-test-password</password></sender>"
        "<properties></properties><sessionId></sessionId></requestInfo>"
        "<requestData><data>x</data></requestData></request></ns2:SendMessage></soapenv:Body></soapenv:Envelope>"
    )
    sent = accepted(sync_url, provider, envelope)
    info = sent.find("request/requestInfo")
    assert info.find("correlationId") is None and info.find("routeId") is None and info.find("properties") is None
    assert info.findtext("sessionId").startswith("{")


def test_children_in_the_wrong_order(sync_url: str, provider: SyncProviderEmulator) -> None:
    envelope = (
        f'<S:Envelope xmlns:S="{SOAP_ENV}"><S:Body><t:SendMessage xmlns:t="{SYNC_TYPES}"><request>'
        "<requestData><data>x</data></requestData>"
        "<requestInfo><sender><password>pep-test-password</password><senderId>pep</senderId></sender>"
        "<properties><value>v</value><key>k</key></properties>"
        "<messageDate>2026-11-22T10:00:00Z</messageDate><serviceId>GbdflPersonInfo</serviceId>"
        "<messageId>m-2</messageId></requestInfo></request></t:SendMessage></S:Body></S:Envelope>"
    )
    sent = accepted(sync_url, provider, envelope)
    assert [c.tag for c in sent.find("request/requestInfo")] == [
        "messageId", "serviceId", "messageDate", "sender", "properties", "sessionId"
    ]


@pytest.mark.parametrize("date", ["2018-01-04T19:38:18.518", "2018-01-04T19:38:18", "2019-12-25T12:48:21.024Z", "2019-09-24T12:20:34.539+06:00"])
def test_message_date_forms(sync_url: str, provider: SyncProviderEmulator, date: str) -> None:
    sent = accepted(sync_url, provider, sync_request(message_date=date))
    assert sent.findtext("request/requestInfo/messageDate") == date


DATA_FORMS = {
    "escaped text": f'<data xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="{XSI}" xsi:type="xs:string">&lt;r&gt;1&lt;/r&gt;</data>',
    "xsi:type inline": f'<data xmlns:cs="urn:cs" xmlns:xsi="{XSI}" xsi:type="cs:Request"><iin>931002451325</iin></data>',
    "plain inline children": "<data><iin>931002451325</iin><name>A</name></data>",
    "namespace-qualified data": '<ns4:data xmlns:ns4="http://bip.bee.kz/SyncChannel/v10/Interfaces"><iin>931002451325</iin></ns4:data>',
    "xsi as default namespace": '<data xmlns="http://www.w3.org/2001/XMLSchema-instance" type="xsd:string">text</data>',
}


@pytest.mark.parametrize("form", list(DATA_FORMS))
def test_data_forms(sync_url: str, provider: SyncProviderEmulator, form: str) -> None:
    sent = accepted(sync_url, provider, sync_request(data=DATA_FORMS[form]))
    data = sent.find("request/requestData/data")
    assert data is not None, "data is emitted unqualified"
    original = body_child(sync_request(data=DATA_FORMS[form]).encode()).find("request/requestData/{*}data")
    assert (data.text or "") == (original.text or "")
    assert [c.tag for c in data] == [c.tag for c in original]


def test_empty_default_namespace_on_wrapper_and_request(sync_url: str, provider: SyncProviderEmulator) -> None:
    envelope = sync_request().replace(f'<ns2:SendMessage xmlns:ns2="{SYNC_TYPES}">', f'<ns2:SendMessage xmlns:ns2="{SYNC_TYPES}" xmlns="">')
    envelope = envelope.replace("<request>", '<request xmlns="">')
    accepted(sync_url, provider, envelope)


def test_mixed_envelope_prefixes(sync_url: str, provider: SyncProviderEmulator) -> None:
    envelope = sync_request().replace(
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body>',
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:SOAP-ENV="{SOAP_ENV}"><SOAP-ENV:Body>',
    ).replace("</soapenv:Body></soapenv:Envelope>", "</SOAP-ENV:Body></soap:Envelope>")
    accepted(sync_url, provider, envelope)


def test_must_understand_security_header_is_understood(sync_url: str, provider: SyncProviderEmulator) -> None:
    header = (
        '<soapenv:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/'
        'oasis-200401-wss-wssecurity-secext-1.0.xsd" soapenv:mustUnderstand="1"/></soapenv:Header>'
    )
    accepted(sync_url, provider, sync_request().replace("<soapenv:Body>", header + "<soapenv:Body>"))


@pytest.mark.parametrize(
    ("content_type", "soap_action"),
    [
        ("text/xml", None),
        ("application/xml; charset=utf-8", None),
        ("text/xml; charset=utf-8", '"urn:anything:at:all"'),
        (None, None),
    ],
)
def test_dispatch_ignores_soap_action_and_accepts_both_xml_types(
    sync_url: str, provider: SyncProviderEmulator, content_type: str | None, soap_action: str | None
) -> None:
    accepted(sync_url, provider, sync_request(), content_type=content_type, soap_action=soap_action)
