"""``gateway signatures verify``: check a signed envelope offline, as of a given time, for integrators and auditors.

The gateway itself takes its verification time only from its clock; this tool alone takes ``--at``, to judge an
archived message as of when it was sent. Trust anchors, CRLs and OCSP responses come from files, so nothing here
needs a running gateway, a database or a network.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography import x509

from gateway.errors import GatewayError
from gateway.security.certificates import holder_iin, organisation_bin
from gateway.security.crls import CrlStore, crl_signed_by, load_crl
from gateway.security.ocsp import CertificateStatus, OcspError, judge_response
from gateway.security.public_keys import is_gost
from gateway.security.trust import Family, TrustStore, load_certificates
from gateway.security.wssec import find_signature, verify_envelope
from gateway.security.xmldsig import DS
from gateway.soap.envelope import parse_xml

ALGORITHM_NAMES = {
    "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311": "GOST 34.310-2004 with GOST 34.311-95",
    "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512":
        "GOST 34.10-2015 (512-bit) with GOST 34.11-2015 (Streebog-512)",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": "RSA with SHA-256",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": "RSA with SHA-1",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha1": "RSA with SHA-1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": "ECDSA with SHA-256",
}


@dataclass
class Report:
    """What the verification found, line by line, and whether everything held."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def say(self, name: str, value: str) -> None:
        """One line of the report."""
        self.lines.append((name, value))

    def fail(self, name: str, reason: str) -> None:
        """One line of the report, and one reason the verdict is not valid."""
        self.say(name, f"FAILED: {reason}")
        self.problems.append(f"{name}: {reason}")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _certificates(paths: tuple[Path, ...]) -> list[x509.Certificate]:
    return [certificate for path in paths for certificate in load_certificates(path)]


def verify_file(
    envelope: bytes, at: datetime, trusted: list[x509.Certificate], registered: list[x509.Certificate],
    crls: list[x509.CertificateRevocationList], ocsp_responses: list[bytes],
) -> Report:
    """Check ``envelope``'s transport signature as of ``at`` against the given anchors, CRLs and OCSP responses."""
    report = Report()
    try:
        root = parse_xml(envelope)
        signature = find_signature(root)
        method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod") if signature is not None else None
        uri = method.get("Algorithm", "") if method is not None else ""
        report.say("algorithm", f"{ALGORITHM_NAMES.get(uri, 'unknown')} ({uri})" if uri else "none")
        by_name = {(c.issuer, c.serial_number): c for c in registered}
        verified = verify_envelope(root, lambda issuer, serial: by_name.get((issuer, serial)))
    except GatewayError as exc:
        report.fail("signature", str(exc))
        return report
    certificate = verified.certificate
    report.say("signature", "valid (the Body's digest and the signature over SignedInfo hold)")
    report.say("signer", certificate.subject.rfc4514_string())
    report.say("serial", f"{certificate.serial_number:x}")
    report.say("BIN", organisation_bin(certificate) or "none (not an organisation's certificate)")
    report.say("IIN", holder_iin(certificate) or "none")
    period = f"{certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to {certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    if certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        report.say("validity", f"current at {at:%Y-%m-%dT%H:%M:%SZ} ({period})")
    else:
        report.fail("validity", f"not current at {at:%Y-%m-%dT%H:%M:%SZ} ({period})")
    issuer = _check_chain(report, certificate, at, trusted)
    if issuer is not None:
        _check_revocation(report, certificate, issuer, at, crls, ocsp_responses)
    return report


def _check_chain(report: Report, certificate: x509.Certificate, at: datetime, trusted: list[x509.Certificate]) -> x509.Certificate | None:
    if not trusted:
        report.fail("chain", "no trust anchor given (--trust)")
        return None
    try:
        anchors = {Family.GOST: [ca for ca in trusted if is_gost(ca)], Family.RSA: [ca for ca in trusted if not is_gost(ca)]}
    except ValueError as exc:
        report.fail("chain", f"a --trust certificate cannot be used: {exc}")
        return None
    store = TrustStore(anchors, CrlStore(trusted, [], 3600))
    try:
        chain = store.chain(certificate, at)
    except GatewayError as exc:
        report.fail("chain", str(exc))
        return None
    report.say("chain", " issued by ".join(c.subject.rfc4514_string() for c in [certificate, *chain]) + " (a trusted anchor)")
    return chain[0]


def _check_revocation(
    report: Report, certificate: x509.Certificate, issuer: x509.Certificate, at: datetime,
    crls: list[x509.CertificateRevocationList], ocsp_responses: list[bytes],
) -> None:
    if not crls and not ocsp_responses:
        report.say("revocation", "not checked (no --crl or --ocsp-response given)")
        return
    issuers_crls = [crl for crl in crls if crl.issuer == issuer.subject]
    if crls and not issuers_crls:
        report.fail("revocation (CRL)", f"no CRL of the issuer {issuer.subject.rfc4514_string()} among --crl")
    for crl in issuers_crls:
        if not crl_signed_by(crl, issuer):
            report.fail("revocation (CRL)", "the CRL's signature does not verify with its issuer's key")
            continue
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        issued = f"CRL of {crl.last_update_utc:%Y-%m-%d}"
        if entry is None:
            report.say("revocation (CRL)", f"not listed in the {issued}")
        elif entry.revocation_date_utc <= at:
            report.fail("revocation (CRL)", f"revoked on {entry.revocation_date_utc:%Y-%m-%dT%H:%M:%SZ} ({issued})")
        else:
            report.say("revocation (CRL)", f"good at that time; revoked later, on {entry.revocation_date_utc:%Y-%m-%dT%H:%M:%SZ} ({issued})")
    for response in ocsp_responses:
        try:
            verdict = judge_response(response, certificate, issuer, at)
        except OcspError as exc:
            report.fail("revocation (OCSP)", str(exc))
            continue
        if verdict.status is CertificateStatus.GOOD:
            report.say("revocation (OCSP)", f"good (produced {verdict.produced_at:%Y-%m-%dT%H:%M:%SZ} by {verdict.responder})")
        elif verdict.status is CertificateStatus.REVOKED and verdict.revoked_at is not None and verdict.revoked_at > at:
            report.say("revocation (OCSP)", f"good at that time; revoked later, on {verdict.revoked_at:%Y-%m-%dT%H:%M:%SZ}")
        elif verdict.status is CertificateStatus.REVOKED:
            when = f" on {verdict.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if verdict.revoked_at else ""
            report.fail("revocation (OCSP)", f"revoked{when}")
        else:
            report.fail("revocation (OCSP)", "the responder does not know the certificate")


@click.group("signatures")
def signatures_group() -> None:
    """Transport signatures: check a signed envelope offline."""


@signatures_group.command("verify")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--at", "at", type=click.DateTime(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              help="judge as of this time (UTC), e.g. an archived message's; default now")
@click.option("--trust", "trust", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="a trusted CA certificate (PEM bundle or DER); repeatable")
@click.option("--cert", "certs", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="a certificate a signature may name by issuer and serial (Layout B); repeatable")
@click.option("--crl", "crl_files", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="a CRL (DER or PEM); repeatable")
@click.option("--ocsp-response", "ocsp_files", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="a DER OCSP response about the signer's certificate; repeatable")
def verify_command(
    file: Path, at: datetime | None, trust: tuple[Path, ...], certs: tuple[Path, ...], crl_files: tuple[Path, ...],
    ocsp_files: tuple[Path, ...],
) -> None:
    """Check FILE's transport signature, signer, chain and revocation; exit 0 only when everything holds."""
    when = _utc(at) if at is not None else datetime.now(UTC)
    report = verify_file(
        file.read_bytes(), when, _certificates(trust), _certificates(certs),
        [load_crl(path.read_bytes()) for path in crl_files], [path.read_bytes() for path in ocsp_files],
    )
    width = max(len(name) for name, _ in report.lines)
    for name, value in report.lines:
        click.echo(f"{name:<{width}}  {value}")
    if report.problems:
        click.echo(f"verdict: NOT VALID as of {when:%Y-%m-%dT%H:%M:%SZ} ({'; '.join(report.problems)})")
        sys.exit(1)
    click.echo(f"verdict: VALID as of {when:%Y-%m-%dT%H:%M:%SZ}")
