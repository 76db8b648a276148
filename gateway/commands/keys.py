"""``gateway keys``: a test PKI shaped like NCA's — RSA, ECDSA, GOST 2004 and GOST 2015 CAs, participant keys with
the organisation's BIN in OU and the holder's IIN in SERIALNUMBER, CRLs, and PKCS#12 files that Java, .NET and NCA's
own tools open. Never for production keys."""
from __future__ import annotations

import os
import re
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway.security.crls import load_crl
from gateway.security.gost_certificates import (
    GOST_ALGORITHMS, GostIssued, create_gost_ca, create_gost_crl, issue_gost_participant,
)
from gateway.security.pki import Issued, create_ca, create_crl, issue_participant
from gateway.security.public_keys import GostPrivateKey, is_gost
from gateway.security.signing_keys import load_signing_key

ALGORITHMS = ("rsa", *GOST_ALGORITHMS)
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


def _holder_name(_context: click.Context, _parameter: click.Parameter, value: str) -> str:
    # HOLDER names files in the CA's folder: a path would write elsewhere, and "ca" would replace the CA's own key
    # (with --force) by a participant's.
    if Path(value).name != value or "\\" in value or value.startswith(".") or value.lower() == "ca":
        raise click.BadParameter(f"{value!r} is not a file name in FOLDER (no path, no leading dot, not 'ca')")
    return value


def _refuse_overwrite(force: bool, *paths: Path) -> None:
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        raise click.ClickException(f"{', '.join(existing)} exist(s): pass --force to overwrite")


def _write_private(path: Path, data: bytes) -> None:
    # Created owner-only, not chmod-ed after writing: the key must never be readable by others, even for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), 0o600)  # a file being overwritten keeps its old mode otherwise
        file.write(data)


def _load_ca(folder: Path) -> Issued | GostIssued:
    if not ((folder / "ca.key").exists() and (folder / "ca.pem").exists()):
        raise click.ClickException(f"no CA in {folder}: run 'gateway keys create-ca {folder}' first")
    cert_pem = (folder / "ca.pem").read_bytes()
    certificate = x509.load_pem_x509_certificate(cert_pem)
    if is_gost(certificate):
        return GostIssued(load_signing_key((folder / "ca.key").read_bytes(), None), certificate)  # type: ignore[arg-type]
    return Issued((folder / "ca.key").read_bytes(), cert_pem)


def _algorithm(ca: Issued | GostIssued) -> str:
    """The algorithm family of ``ca``'s key, which a CA folder remembers through ca.pem."""
    if isinstance(ca, GostIssued):
        return "gost2004" if isinstance(ca.key, GostPrivateKey) else "gost2015"
    return "rsa"


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
@click.argument("holder", callback=_holder_name)
@click.option("--bin", "bin_", type=_twelve_digits("BIN"), metavar="BIN", help="the organisation's BIN (12 digits); omit for an individual")
@click.option("--iin", type=_twelve_digits("IIN"), metavar="IIN", default="931002451325", show_default=True, help="the holder's IIN")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), help="refuse unless the CA's algorithm is this one (default: the CA's)")
@click.option("--ecdsa", is_flag=True, help="a P-256 key instead of RSA-2048 (RSA CAs only)")
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True)
@click.option("--p12-password", envvar="GATEWAY_KEYS_P12_PASSWORD", show_envvar=True,
              help="also write FOLDER/HOLDER.p12 with this password (prefer the variable: arguments show in ps)")
@click.option("--force", is_flag=True, help="overwrite HOLDER's existing key")
def issue_command(
    folder: Path, holder: str, bin_: str | None, iin: str, algorithm: str | None, ecdsa: bool, days: int,
    p12_password: str | None, force: bool,
) -> None:
    """Issue a signing certificate for HOLDER from the CA in FOLDER, of the CA's algorithm (FOLDER/HOLDER.key,
    FOLDER/HOLDER.pem, and FOLDER/HOLDER.p12 with --p12-password)."""
    p12_path = folder / f"{holder}.p12"
    _refuse_overwrite(force, folder / f"{holder}.key", folder / f"{holder}.pem", p12_path)
    ca = _load_ca(folder)
    if algorithm is not None and algorithm != _algorithm(ca):
        raise click.ClickException(f"the CA in {folder} is {_algorithm(ca)}: it issues no {algorithm} keys")
    if isinstance(ca, GostIssued):
        if ecdsa:
            raise click.BadParameter("a GOST CA issues GOST keys", param_hint="--ecdsa")
        issued: Issued | GostIssued = issue_gost_participant(ca, bin_, common_name=holder, iin=iin, valid_days=days)
    else:
        issued = issue_participant(ca, bin_, common_name=holder, iin=iin, ecdsa=ecdsa, valid_days=days)
    _write_private(folder / f"{holder}.key", issued.key_pem)
    (folder / f"{holder}.pem").write_bytes(issued.cert_pem)
    if p12_password:
        _write_private(p12_path, _pkcs12(issued, ca, p12_password, holder))
    else:
        p12_path.unlink(missing_ok=True)  # forced: an old .p12 would hold the replaced key
    click.echo(f"{holder}: serial {issued.certificate.serial_number:x}, subject {issued.certificate.subject.rfc4514_string()}")


@keys_group.command("revoke")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("holder", callback=_holder_name)
def revoke_command(folder: Path, holder: str) -> None:
    """Add HOLDER's certificate to the CA's CRL (FOLDER/ca.crl)."""
    ca = _load_ca(folder)
    holder_path = folder / f"{holder}.pem"
    if not holder_path.exists():
        raise click.ClickException(f"no certificate {holder_path}")
    serial = x509.load_pem_x509_certificate(holder_path.read_bytes()).serial_number
    crl_path = folder / "ca.crl"
    revoked = [entry.serial_number for entry in load_crl(crl_path.read_bytes())] if crl_path.exists() else []
    if serial in revoked:
        click.echo(f"{holder} is already revoked; {crl_path} lists {len(revoked)} certificate(s)")
        return
    revoked.append(serial)
    crl_path.write_bytes(_crl(ca, revoked))
    click.echo(f"{holder} revoked; {crl_path} lists {len(revoked)} certificate(s)")
