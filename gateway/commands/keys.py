"""``gateway keys``: a test PKI shaped like NCA's — RSA, ECDSA, GOST 2004 and GOST 2015 CAs, participant keys with
the organisation's BIN in OU and the holder's IIN in SERIALNUMBER, CRLs, and PKCS#12 files that Java, .NET and NCA's
own tools open. Never for production keys."""
from __future__ import annotations

import re
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway.security.crls import load_crl
from gateway.security.gost_certificates import (
    GostIssued, create_gost_ca, create_gost_crl, issue_gost_participant,
)
from gateway.security.pki import Issued, create_ca, create_crl, issue_participant
from gateway.security.public_keys import is_gost
from gateway.security.signing_keys import load_signing_key

ALGORITHMS = ("rsa", "gost2004", "gost2015")
_TWELVE_DIGITS = re.compile(r"^\d{12}$")
# PKCS#12 that Java 8+ keytool and .NET Framework open, as NCA's own RSA files: 3DES for the key and the
# certificates, an HMAC-SHA1 MAC (OpenSSL 3's AES default is refused by older peers).
_PKCS12_ITERATIONS = 2048


def _twelve_digits(name: str) -> click.types.FuncParamType:
    def check(value: str | None) -> str | None:
        if value is not None and not _TWELVE_DIGITS.match(value):
            raise click.BadParameter(f"a {name} has exactly 12 digits, not {value!r}")
        return value
    return click.types.FuncParamType(check)


def _refuse_overwrite(force: bool, *paths: Path) -> None:
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        raise click.ClickException(f"{', '.join(existing)} exist(s): pass --force to overwrite")


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _load_ca(folder: Path) -> Issued | GostIssued:
    cert_pem = (folder / "ca.pem").read_bytes()
    certificate = x509.load_pem_x509_certificate(cert_pem)
    if is_gost(certificate):
        return GostIssued(load_signing_key((folder / "ca.key").read_bytes(), None), certificate)  # type: ignore[arg-type]
    return Issued((folder / "ca.key").read_bytes(), cert_pem)


def _crl(ca: Issued | GostIssued, revoked: list[int]) -> bytes:
    return create_gost_crl(ca, revoked) if isinstance(ca, GostIssued) else create_crl(ca, revoked)


def _pkcs12(issued: Issued | GostIssued, ca: Issued | GostIssued, password: str, holder: str) -> bytes:
    if isinstance(issued, GostIssued):
        return issued.pkcs12(password, [ca.certificate])
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(_PKCS12_ITERATIONS)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1()).build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(holder.encode(), issued.key, issued.certificate, [ca.certificate], encryption)  # type: ignore[arg-type]


@click.group("keys")
def keys_group() -> None:
    """A test PKI like NCA's: CAs, participant certificates carrying BIN and IIN, CRLs (never for production)."""


@keys_group.command("create-ca")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="rsa", show_default=True)
@click.option("--name", help="the CA's common name (default: Test national CA (<ALGORITHM> TEST))")
@click.option("--force", is_flag=True, help="overwrite an existing CA in FOLDER")
def create_ca_command(folder: Path, algorithm: str, name: str | None, force: bool) -> None:
    """Create a test CA (FOLDER/ca.key, FOLDER/ca.pem) and its empty CRL (FOLDER/ca.crl)."""
    _refuse_overwrite(force, folder / "ca.key", folder / "ca.pem")
    folder.mkdir(parents=True, exist_ok=True)
    common_name = name or f"Test national CA ({algorithm.upper()} TEST)"
    ca = create_ca(common_name) if algorithm == "rsa" else create_gost_ca(common_name, algorithm)
    _write_private(folder / "ca.key", ca.key_pem)
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    (folder / "ca.crl").write_bytes(_crl(ca, []))
    click.echo(f"{algorithm} CA written to {folder}/ca.pem (key ca.key, CRL ca.crl)")


@keys_group.command("issue")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("holder")
@click.option("--bin", "bin_", type=_twelve_digits("BIN"), help="the organisation's BIN (12 digits); omit for an individual")
@click.option("--iin", type=_twelve_digits("IIN"), default="931002451325", show_default=True, help="the holder's IIN")
@click.option("--ecdsa", is_flag=True, help="a P-256 key instead of RSA-2048 (RSA CAs only)")
@click.option("--days", type=int, default=365, show_default=True)
@click.option("--p12-password", help="also write FOLDER/HOLDER.p12 with this password")
@click.option("--force", is_flag=True, help="overwrite HOLDER's existing key")
def issue_command(
    folder: Path, holder: str, bin_: str | None, iin: str, ecdsa: bool, days: int, p12_password: str | None, force: bool,
) -> None:
    """Issue a signing certificate for HOLDER from the CA in FOLDER, of the CA's algorithm (FOLDER/HOLDER.key,
    FOLDER/HOLDER.pem, and FOLDER/HOLDER.p12 with --p12-password)."""
    _refuse_overwrite(force, folder / f"{holder}.key", folder / f"{holder}.pem", folder / f"{holder}.p12")
    ca = _load_ca(folder)
    if isinstance(ca, GostIssued):
        if ecdsa:
            raise click.BadParameter("a GOST CA issues GOST keys", param_hint="--ecdsa")
        issued: Issued | GostIssued = issue_gost_participant(ca, bin_, common_name=holder, iin=iin, valid_days=days)
    else:
        issued = issue_participant(ca, bin_, common_name=holder, iin=iin, ecdsa=ecdsa, valid_days=days)
    _write_private(folder / f"{holder}.key", issued.key_pem)
    (folder / f"{holder}.pem").write_bytes(issued.cert_pem)
    if p12_password:
        _write_private(folder / f"{holder}.p12", _pkcs12(issued, ca, p12_password, holder))
    click.echo(f"{holder}: serial {issued.certificate.serial_number:x}, subject {issued.certificate.subject.rfc4514_string()}")


@keys_group.command("revoke")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("holder")
def revoke_command(folder: Path, holder: str) -> None:
    """Add HOLDER's certificate to the CA's CRL (FOLDER/ca.crl)."""
    ca = _load_ca(folder)
    crl_path = folder / "ca.crl"
    revoked = [entry.serial_number for entry in load_crl(crl_path.read_bytes())] if crl_path.exists() else []
    revoked.append(x509.load_pem_x509_certificate((folder / f"{holder}.pem").read_bytes()).serial_number)
    crl_path.write_bytes(_crl(ca, revoked))
    click.echo(f"{holder} revoked; {crl_path} lists {len(revoked)} certificate(s)")
