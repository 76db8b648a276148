"""The demo's test PKI (``var/pki``, made on first run): an RSA CA with the gateway's RSA key, and a GOST 2004 CA
with the gateway's GOST key, the sample registry's GOST participant ``gost-client`` and an OCSP responder
certificate; and, once the gateway is up, one GOST-signed exchange on ``/bip-sync-wss-gost/`` to show it."""
from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import click
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from gateway.security.gost_certificates import (
    build_certificate, create_gost_crl, create_gost_ca, issue_gost_participant,
)
from gateway.security.pki import create_ca, create_crl, issue_participant

GOST_CLIENT = "gost-client"  # the sample registry's GOST participant, BIN 990140000077
GOST_CLIENT_BIN = "990140000077"
GOST_CLIENT_PASSWORD = "gost-demo-password"
OCSP_PORT = 8096


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _rsa_part(folder: Path) -> None:
    ca = create_ca("Demo national CA (RSA TEST)")
    gateway = issue_participant(ca, "990140000033", common_name="e-government gateway (demo)")
    _write_private(folder / "ca.key", ca.key_pem)
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    (folder / "ca.crl").write_bytes(create_crl(ca, []))
    _write_private(folder / "gateway.key", gateway.key_pem)
    (folder / "gateway.pem").write_bytes(gateway.cert_pem)


def _gost_part(folder: Path) -> None:
    """The GOST CA, the gateway's and the participant's GOST keys, and an RSA key the OCSP responder emulator signs
    with, certified by the GOST CA for OCSP signing (the emulator's ``cryptography`` builder cannot sign GOST)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = create_gost_ca("Demo national CA (GOST TEST)")
    gateway = issue_gost_participant(ca, "990140000033", common_name="e-government gateway (demo, GOST)")
    client = issue_gost_participant(ca, GOST_CLIENT_BIN, common_name="Akimat information system (demo)", iin="880101300123")
    responder_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    responder = build_certificate(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Demo OCSP responder (GOST TEST)")]),
        responder_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        ca.certificate.subject, ca.key, 3650, [(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.OCSP_SIGNING]), False)],
    )
    _write_private(folder / "ca.key", ca.key_pem)
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    (folder / "ca.crl").write_bytes(create_gost_crl(ca, []))
    for name, issued in (("gateway", gateway), (GOST_CLIENT, client)):
        _write_private(folder / f"{name}.key", issued.key_pem)
        (folder / f"{name}.pem").write_bytes(issued.cert_pem)
    _write_private(folder / "ocsp.key", responder_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (folder / "ocsp.pem").write_bytes(responder.public_bytes(serialization.Encoding.PEM))


def prepare_demo_pki(folder: Path) -> list[str]:
    """Make the demo PKI once and point the settings at it (through the environment, so the delivery worker
    process sees them too); returns the arguments of ``python -m emulators`` (the ``gateway-emulators`` command)
    that start the OCSP responder emulator."""
    if not (folder / "gateway.pem").exists():
        folder.mkdir(parents=True, exist_ok=True)
        _rsa_part(folder)
    gost = folder / "gost"
    if not (gost / "ocsp.pem").exists():
        _gost_part(gost)
    settings = {
        "SIGNING_KEY": folder / "gateway.key", "SIGNING_CERT": folder / "gateway.pem", "TRUSTED_CA_FILE": folder / "ca.pem",
        "GOST_SIGNING_KEY": gost / "gateway.key", "GOST_SIGNING_CERT": gost / "gateway.pem",
        "TRUSTED_GOST_CA_FILE": gost / "ca.pem", "CRL_SOURCES": f"{folder / 'ca.crl'},{gost / 'ca.crl'}",
        "REVOCATION_POLICY": "both", "OCSP_RESPONDER_URL": f"http://127.0.0.1:{OCSP_PORT}/",
    }
    for name, value in settings.items():
        os.environ.setdefault(f"GATEWAY_{name}", str(value))
    click.echo(f"demo PKI in {folder}: the gateway signs with gateway.pem (RSA) and gost/gateway.pem (GOST 34.310); "
               f"issue callers' certificates with 'gateway keys issue {folder} NAME --bin BIN'")
    return ["run", "ocsp", "--port", str(OCSP_PORT), "--ca-cert", str(gost / "ca.pem"), "--responder-key", str(gost / "ocsp.key"),
            "--responder-cert", str(gost / "ocsp.pem")]


def _gost_request() -> bytes:
    from gateway.security.wssec import EnvelopeSigner

    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        '<ns2:SendMessage xmlns:ns2="http://bip.bee.kz/SyncChannel/v10/Types"><request><requestInfo>'
        f"<messageId>{uuid.uuid4()}</messageId><serviceId>GbdflPersonInfoGost</serviceId>"
        "<messageDate>2026-12-05T12:00:00.000+05:00</messageDate>"
        f"<sender><senderId>{GOST_CLIENT}</senderId><password>{GOST_CLIENT_PASSWORD}</password></sender></requestInfo>"
        '<requestData><data><iin xmlns="urn:demo">880101300123</iin></data></requestData></request></ns2:SendMessage>'
        "</soapenv:Body></soapenv:Envelope>"
    )
    folder = Path(os.environ["GATEWAY_GOST_SIGNING_KEY"]).parent
    signer = EnvelopeSigner.load(folder / f"{GOST_CLIENT}.key", folder / f"{GOST_CLIENT}.pem", None)
    return signer.sign(etree.fromstring(envelope.encode()))


def _show_gost_exchange(url: str) -> None:
    from gateway.security.wssec import find_signature, verify_envelope
    from gateway.soap.envelope import parse_xml

    http = urllib3.PoolManager(retries=False, timeout=30.0)
    for _ in range(60):  # the workers may still be starting; a minute at most
        try:
            answer = http.request("POST", url, body=_gost_request(), headers={"Content-Type": "text/xml; charset=utf-8"})
            break
        except urllib3.exceptions.HTTPError:
            time.sleep(1.0)
    else:
        click.echo(f"GOST exchange on {url}: the gateway did not answer")
        return
    root = parse_xml(answer.data)
    signature = find_signature(root)
    if answer.status != 200 or signature is None:
        click.echo(f"GOST exchange on {url}: HTTP {answer.status}, {answer.data[:300]!r}")
        return
    method = signature.find("{http://www.w3.org/2000/09/xmldsig#}SignedInfo/{http://www.w3.org/2000/09/xmldsig#}SignatureMethod")
    signer = verify_envelope(root).certificate.subject.rfc4514_string()
    click.echo(f"GOST exchange on {url}: {GOST_CLIENT}'s GOST 34.310 signature verified (chain, CRL and OCSP); answer "
               f"HTTP 200 signed with {method.get('Algorithm')} by {signer}")


def show_gost_exchange(url: str) -> None:
    """In the background: one GOST-signed SendMessage from ``gost-client`` to ``url``, and what came back."""
    threading.Thread(target=_show_gost_exchange, args=(url,), daemon=True).start()
