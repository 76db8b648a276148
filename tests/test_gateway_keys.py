"""The gateway's keys from its settings: an RSA key and NCA's GOST key side by side, which signs what, the GOST
key as NCA issues it (PKCS#12) or as PEM, and trust anchors per algorithm family."""
from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.security.callers import answer_recipient
from gateway.security.encryption import can_encrypt_to
from gateway.security.keys import load_keys, load_trust_store
from gateway.security.nca_pkcs12 import read_pkcs12
from gateway.security.public_keys import GostPrivateKey
from gateway.security.wssec import EnvelopeSigner, verify_envelope
from gateway.security.xmldsig import GOST2004, RSA_SHA256
from gateway.soap.envelope import parse_xml
from registry.snapshot import SenderView
from tests.pki import participant
from tests.wire import REPO_ROOT, SAMPLES, sync_request

NCA = REPO_ROOT.parent / "shared" / "peers" / "nca-test-pki"
GOST_P12 = NCA / "individual_valid" / "GOSTKNCA_f8a422238209b6e753116431b69b09178f14e9d7.p12"


def pem_pair(folder: Path, name: str, bin_: str) -> tuple[Path, Path]:
    key, cert = participant(bin_)
    (folder / f"{name}.key").write_bytes(key)
    (folder / f"{name}.pem").write_bytes(cert)
    return folder / f"{name}.key", folder / f"{name}.pem"


def method_of(signer: EnvelopeSigner) -> str:
    root = etree.fromstring(signer.sign(etree.fromstring(sync_request().encode())))
    verify_envelope(root)
    return root.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureMethod").get("Algorithm")


def test_an_rsa_key_a_previous_one_and_a_gost_key_side_by_side(tmp_path: Path) -> None:
    current, previous = pem_pair(tmp_path, "current", "990140000033"), pem_pair(tmp_path, "previous", "990140000033")
    keys = load_keys(Settings(
        signing_key=current[0], signing_cert=current[1], previous_signing_key=previous[0], previous_signing_cert=previous[1],
        gost_signing_key=GOST_P12, gost_signing_key_password="Qwerty12",
    ))
    assert isinstance(keys.gost.private_key, GostPrivateKey)
    assert method_of(keys.for_gost(True)) == GOST2004
    assert method_of(keys.for_gost(False)) == RSA_SHA256
    assert len(keys.decryption_keys) == 2 and all(isinstance(key, rsa.RSAPrivateKey) for key in keys.decryption_keys)
    assert keys.sealing is keys.signer, "journals are sealed with the RSA key"


def test_a_gateway_with_only_a_gost_key_signs_everything_with_it(tmp_path: Path) -> None:
    keys = load_keys(Settings(signing_key=GOST_P12, signing_key_password="Qwerty12"))
    assert keys.signer is None and keys.gost is not None
    assert method_of(keys.for_gost(False)) == GOST2004
    assert keys.sealing is None


def test_keys_in_each_others_places_are_refused(tmp_path: Path) -> None:
    key, cert = pem_pair(tmp_path, "rsa", "990140000033")
    with pytest.raises(ValueError, match="not a GOST key"):
        load_keys(Settings(gost_signing_key=key, gost_signing_cert=cert))
    with pytest.raises(ValueError, match="GATEWAY_SIGNING_KEY is a GOST key too"):
        load_keys(Settings(signing_key=GOST_P12, signing_key_password="Qwerty12", gost_signing_key=GOST_P12,
                           gost_signing_key_password="Qwerty12"))


def test_a_wrong_password_for_ncas_file_is_named() -> None:
    with pytest.raises(ValueError, match="wrong password"):
        load_keys(Settings(gost_signing_key=GOST_P12, gost_signing_key_password="qwerty12"))


def test_a_gost_key_in_pem_signs_like_the_pkcs12(tmp_path: Path) -> None:
    contents = read_pkcs12(GOST_P12.read_bytes(), "Qwerty12")
    body = base64.encodebytes(contents.private_key_info).decode()
    (tmp_path / "gost.key").write_text(f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n")
    (tmp_path / "gost.pem").write_bytes(contents.certificates[0].public_bytes(serialization.Encoding.PEM))
    keys = load_keys(Settings(gost_signing_key=tmp_path / "gost.key", gost_signing_cert=tmp_path / "gost.pem"))
    assert method_of(keys.gost) == GOST2004
    assert keys.gost.certificate == contents.certificates[0]


def test_trust_anchors_are_configured_per_family() -> None:
    signer = verify_envelope(parse_xml((SAMPLES / "nitec-sample-sync-request-gost.xml").read_bytes())).certificate
    at = datetime(2019, 6, 1, tzinfo=UTC)
    both = load_trust_store(Settings(trusted_ca_file=NCA / "ca" / "nca_rsa_test.crt",
                                     trusted_gost_ca_file=NCA / "ca" / "nca_gost_test.crt"), lambda: at)
    assert "GOST TEST" in both.chain(signer)[0].subject.rfc4514_string()
    # The same GOST CA in the RSA file is no anchor for GOST certificates.
    misplaced = load_trust_store(Settings(trusted_ca_file=NCA / "ca" / "nca_gost_test.crt"), lambda: at)
    with pytest.raises(GatewayError) as refused:
        misplaced.chain(signer)
    assert refused.value.error.code == "SCE024"
    assert load_trust_store(Settings()) is None


def test_a_gost_signer_cannot_be_encrypted_to_and_says_so_without_failing() -> None:
    signer = verify_envelope(parse_xml((SAMPLES / "nitec-sample-sync-request-gost.xml").read_bytes())).certificate
    assert can_encrypt_to(signer) is False
    sender = SenderView("senderId", None, "123456789021", None, (signer,))
    assert answer_recipient(sender, signer) is None, "no RSA certificate registered: the mode-3 answer goes signed only"
