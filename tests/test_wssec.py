"""Transport-signature verification (Layout A) and its defences, on the real sample and on our own signatures."""
from __future__ import annotations

import copy

import pytest
from lxml import etree

from gateway.errors import GatewayError
from gateway.security.certificates import organisation_bin
from gateway.security.wssec import DS, sign_envelope, verify_envelope
from tests.pki import participant
from tests.wire import SAMPLES, SOAP_ENV, sync_request

SAMPLE = SAMPLES / "ncanode-WsseServiceTest-signed-rsa-sha256.xml"


def signed(envelope: str, ecdsa: bool = False, bin_: str = "990140000022") -> etree._Element:
    key, cert = participant(bin_, ecdsa=ecdsa)
    return etree.fromstring(etree.tostring(sign_envelope(etree.fromstring(envelope.encode()), key, cert)))


def test_the_real_sample_verifies_and_names_its_signer() -> None:
    verified = verify_envelope(etree.fromstring(SAMPLE.read_bytes()))
    assert "IIN" in verified.certificate.subject.rfc4514_string()
    assert organisation_bin(verified.certificate) is None, "an individual's certificate carries no BIN"


def test_the_real_sample_fails_after_any_change_to_its_body() -> None:
    tampered = SAMPLE.read_bytes().replace(b"931002451325", b"931002451326")
    with pytest.raises(GatewayError) as refused:
        verify_envelope(etree.fromstring(tampered))
    assert refused.value.error.code == "SCE006"


@pytest.mark.parametrize("ecdsa", [False, True], ids=["RSA-SHA256", "ECDSA-P256"])
def test_our_layout_a_signatures_verify(ecdsa: bool) -> None:
    root = etree.fromstring(etree.tostring(signed(sync_request(), ecdsa=ecdsa)))
    verified = verify_envelope(root)
    assert organisation_bin(verified.certificate) == "990140000022"


def test_unsigned_message() -> None:
    with pytest.raises(GatewayError) as refused:
        verify_envelope(etree.fromstring(sync_request().encode()))
    assert refused.value.error.code == "SCE007"


def test_signature_wrapping_is_refused() -> None:
    root = signed(sync_request())
    body = root.find(f"{{{SOAP_ENV}}}Body")
    # The attacker keeps the signed Body (with its Id) in the header and puts a Body of their own in its place.
    wrapper = etree.SubElement(root.find(f"{{{SOAP_ENV}}}Header"), "{urn:evil}Wrapper")
    wrapper.append(copy.deepcopy(body))
    forged = etree.SubElement(root, f"{{{SOAP_ENV}}}Body")
    forged.extend(copy.deepcopy(list(body)))
    forged.find(".//serviceId").text = "SomethingElse"
    root.remove(body)
    with pytest.raises(GatewayError) as refused:
        verify_envelope(etree.fromstring(etree.tostring(root)))
    assert refused.value.error.code == "SCE006"


def test_duplicate_ids_are_refused() -> None:
    root = signed(sync_request())
    body = root.find(f"{{{SOAP_ENV}}}Body")
    decoy = etree.SubElement(root.find(f"{{{SOAP_ENV}}}Header"), "{urn:evil}Decoy")
    decoy.set("Id", body.get("{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id"))
    with pytest.raises(GatewayError) as refused:
        verify_envelope(etree.fromstring(etree.tostring(root)))
    assert "2 elements" in refused.value.data


def test_extra_transforms_are_refused() -> None:
    root = signed(sync_request())
    transforms = root.find(f".//{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")
    with pytest.raises(GatewayError) as refused:
        verify_envelope(etree.fromstring(etree.tostring(root)))
    assert "not allowed" in refused.value.data


def test_inclusive_namespaces_prefix_list_is_honoured() -> None:
    """Variant A′ (a logged real request): PrefixList on the SignedInfo c14n and an empty one on the transform."""
    import base64

    import xmlsec
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import serialization

    from gateway.security.wssec import BASE64, EXC_C14N, WSU, X509V3

    key, cert = participant("990140000022")
    root = etree.fromstring(sync_request().encode())
    body = root.find(f"{{{SOAP_ENV}}}Body")
    body.set(f"{{{WSU}}}Id", "id-variant")
    header = etree.Element(f"{{{SOAP_ENV}}}Header")
    root.insert(0, header)
    security = etree.SubElement(header, "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}Security")
    signature = xmlsec.template.create(security, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds")
    security.append(signature)
    inclusive = "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces"
    etree.SubElement(signature[0][0], inclusive, PrefixList="soapenv")
    reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri="#id-variant")
    transform = xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    etree.SubElement(transform, inclusive, PrefixList="")
    token = etree.SubElement(xmlsec.template.ensure_key_info(signature), "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}SecurityTokenReference")
    identifier = etree.SubElement(token, "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}KeyIdentifier", EncodingType=BASE64, ValueType=X509V3)
    identifier.text = base64.b64encode(cx509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER)).decode()
    context = xmlsec.SignatureContext()
    context.register_id(body, "Id", WSU)
    context.key = xmlsec.Key.from_memory(key, xmlsec.constants.KeyDataFormatPem, None)
    context.sign(signature)
    serialized = etree.tostring(root)
    assert b"PrefixList" in serialized and EXC_C14N.encode() in serialized
    verify_envelope(etree.fromstring(serialized))
    with pytest.raises(GatewayError):
        verify_envelope(etree.fromstring(serialized.replace(b"<messageId>", b"<messageId>x")))


def test_zeep_binary_signature_verifies(tmp_path) -> None:  # noqa: ANN001
    """Interop: what zeep's BinarySignature makes (certificate in a BinarySecurityToken, RSA-SHA1) verifies,
    and fails after a change to the Body."""
    from zeep.wsse.signature import BinarySignature

    key, cert = participant("990140000022")
    (tmp_path / "key.pem").write_bytes(key)
    (tmp_path / "cert.pem").write_bytes(cert)
    envelope, _ = BinarySignature(str(tmp_path / "key.pem"), str(tmp_path / "cert.pem")).apply(
        etree.fromstring(sync_request().encode()), {}
    )
    serialized = etree.tostring(envelope)
    assert organisation_bin(verify_envelope(etree.fromstring(serialized)).certificate) == "990140000022"
    with pytest.raises(GatewayError):
        verify_envelope(etree.fromstring(serialized.replace(b"<serviceId>GbdflPersonInfo", b"<serviceId>Other")))


def test_a_reference_without_the_exclusive_c14n_transform_is_refused() -> None:
    """WS-I BSP 1.1 (R5416, R5423): the Body reference carries exactly one transform, exclusive c14n; without it
    XML-DSig would fall back to inclusive c14n, which the gateway does not do."""
    root = signed(sync_request())
    transforms = root.find(f".//{{{DS}}}Transforms")
    transforms.getparent().remove(transforms)
    with pytest.raises(GatewayError) as refused:
        verify_envelope(etree.fromstring(etree.tostring(root)))
    assert "exactly one transform" in refused.value.data


def test_a_signature_method_that_does_not_fit_the_key_is_refused() -> None:
    """An RSA signature relabelled ECDSA (or the reverse) never verifies, whatever its bytes."""
    for ecdsa, relabel in ((False, "ecdsa-sha256"), (True, "rsa-sha256")):
        root = signed(sync_request(), ecdsa=ecdsa)
        root.find(f".//{{{DS}}}SignatureMethod").set("Algorithm", f"http://www.w3.org/2001/04/xmldsig-more#{relabel}")
        with pytest.raises(GatewayError) as refused:
            verify_envelope(etree.fromstring(etree.tostring(root)))
        assert refused.value.error.code == "SCE006"


@pytest.mark.parametrize("value", ["", "not base64!", "AAAA" * 21], ids=["empty", "not-base64", "odd-ecdsa-halves"])
def test_a_malformed_signature_value_is_refused(value: str) -> None:
    root = signed(sync_request(), ecdsa=True)
    root.find(f".//{{{DS}}}SignatureValue").text = value
    with pytest.raises(GatewayError) as refused:
        verify_envelope(etree.fromstring(etree.tostring(root)))
    assert refused.value.error.code == "SCE006"
