"""A business-data signature inside ``data`` (enveloped XMLDSig, shep-wire.md §3.5) survives the round trip."""
from __future__ import annotations

import copy

import pytest
from lxml import etree
from signxml.exceptions import InvalidSignature

from emulators.data_signer import DataSigner
from emulators.sync_provider import ProviderBehaviour, SyncProviderEmulator
from tests.wire import body_child, post, sync_request

XSI = "http://www.w3.org/2001/XMLSchema-instance"
DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def signer() -> DataSigner:
    return DataSigner.self_signed("GBD FL test provider")


@pytest.fixture()
def signing_provider(provider: SyncProviderEmulator, signer: DataSigner):
    provider.signer = signer
    provider.behaviour = ProviderBehaviour(sign_data=True)
    yield provider
    provider.signer = None


def standalone(element: etree._Element) -> etree._Element:
    """What a receiving system verifies: the payload taken out of the envelope as a document of its own."""
    return etree.fromstring(etree.tostring(copy.deepcopy(element)))


def test_signed_inline_answer_still_verifies(gateway_url: str, signing_provider: SyncProviderEmulator, signer: DataSigner) -> None:
    answer = post(f"{gateway_url}/bip-sync/", sync_request(data="<data><iin>931002451325</iin></data>"))
    assert answer.status == 200
    payload = answer.payload.find("response/responseData/data")[0]
    assert payload.find(f"{{{DS}}}Signature") is not None
    signed = signer.verify(standalone(payload))
    assert signed.findtext("{*}serviceId") == "GbdflPersonInfo"


def test_signed_escaped_answer_still_verifies(gateway_url: str, signing_provider: SyncProviderEmulator, signer: DataSigner) -> None:
    request = sync_request()  # data as escaped text with xsi:type xs:string, like the NIT sample
    answer = post(f"{gateway_url}/bip-sync/", request)
    data = answer.payload.find("response/responseData/data")
    assert data.get(f"{{{XSI}}}type") == "xs:string"
    signer.verify(etree.fromstring(data.text.encode()))


def test_tampered_answer_does_not_verify(signer: DataSigner) -> None:
    """The check above can fail: the same verification refuses a payload changed after signing."""
    payload = signer.sign(etree.fromstring(b"<answer xmlns='urn:t'><iin>931002451325</iin></answer>"))
    payload.find("{urn:t}iin").text = "000000000000"
    with pytest.raises(InvalidSignature):
        signer.verify(standalone(payload))


def test_signed_request_data_reaches_the_provider_verifiable(gateway_url: str, provider: SyncProviderEmulator) -> None:
    caller = DataSigner.self_signed("PEP test caller")
    signed = caller.sign(etree.fromstring(b'<q:query xmlns:q="urn:pep:query"><q:iin>931002451325</q:iin></q:query>'))
    data = f'<data xmlns:cs="urn:cs" xmlns:xsi="{XSI}" xsi:type="cs:Query">{etree.tostring(signed).decode()}</data>'
    assert post(f"{gateway_url}/bip-sync/", sync_request(data=data)).status == 200
    received = body_child(provider.received[0].body).find("request/requestData/data")[0]
    caller.verify(standalone(received))
