"""``gateway keys``: test CAs of every algorithm NCA uses, certificates carrying BIN and IIN as NCA's do, that the
gateway's trust store accepts, PKCS#12 that other peers open, and revocation."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree

from gateway.cli import main
from gateway.errors import GatewayError
from gateway.security.certificates import holder_iin, organisation_bin
from gateway.security.crls import CrlStore, crl_signed_by, load_crl
from gateway.security.public_keys import Gost2015PublicKey, GostPublicKey, issued_by, public_key_of
from gateway.security.signing_keys import load_pkcs12
from gateway.security.trust import Family, TrustStore, load_certificates
from gateway.security.wssec import DS, EnvelopeSigner, verify_envelope
from gateway.security.xmldsig import GOST2004, GOST2015, RSA_SHA256
from tests.wire import sync_request


def keys(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["keys", *map(str, args)])


def trust_store(folder: Path, refresh_seconds: float = 0.001) -> TrustStore:
    cas = load_certificates(folder / "ca.pem")
    family = Family.GOST if isinstance(public_key_of(cas[0]), (GostPublicKey, Gost2015PublicKey)) else Family.RSA
    return TrustStore({family: cas}, CrlStore(cas, [str(folder / "ca.crl")], refresh_seconds))


SIGNATURE_METHODS = {"rsa": RSA_SHA256, "gost2004": GOST2004, "gost2015": GOST2015}


@pytest.mark.parametrize("algorithm", ["rsa", "gost2004", "gost2015"])
def test_create_issue_sign_revoke(tmp_path: Path, algorithm: str) -> None:
    assert keys("create-ca", tmp_path, "--algorithm", algorithm).exit_code == 0
    result = keys("issue", tmp_path, "akimat", "--bin", "990140000077", "--iin", "880101300123", "--p12-password", "p12-secret")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "akimat.key").stat().st_mode & 0o077 == 0, "private keys are readable by their owner only"
    certificate = x509.load_pem_x509_certificate((tmp_path / "akimat.pem").read_bytes())
    assert organisation_bin(certificate) == "990140000077" and holder_iin(certificate) == "880101300123"
    assert issued_by(certificate, load_certificates(tmp_path / "ca.pem")[0])
    for signer in (EnvelopeSigner.load(tmp_path / "akimat.key", tmp_path / "akimat.pem", None),
                   EnvelopeSigner.load(tmp_path / "akimat.p12", None, "p12-secret")):
        signed = etree.fromstring(signer.sign(etree.fromstring(sync_request().encode())))
        assert verify_envelope(signed).certificate == certificate
        assert signed.find(f".//{{{DS}}}SignatureMethod").get("Algorithm") == SIGNATURE_METHODS[algorithm]
    store = trust_store(tmp_path)
    store.check(certificate)
    assert keys("revoke", tmp_path, "akimat").exit_code == 0
    crl = load_crl((tmp_path / "ca.crl").read_bytes())
    assert crl_signed_by(crl, load_certificates(tmp_path / "ca.pem")[0])
    assert crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
    with pytest.raises(GatewayError) as refused:
        store.check(certificate)
    assert refused.value.error.code == "SCE005"


def test_an_existing_ca_or_key_is_not_overwritten_without_force(tmp_path: Path) -> None:
    keys("create-ca", tmp_path)
    ca = (tmp_path / "ca.pem").read_bytes()
    again = keys("create-ca", tmp_path, "--algorithm", "gost2004")
    assert again.exit_code == 1 and "--force" in again.output
    assert (tmp_path / "ca.pem").read_bytes() == ca
    keys("issue", tmp_path, "pep", "--bin", "990140000022")
    assert keys("issue", tmp_path, "pep", "--bin", "990140000022").exit_code == 1
    assert keys("issue", tmp_path, "pep", "--bin", "990140000022", "--force").exit_code == 0
    assert keys("create-ca", tmp_path, "--force").exit_code == 0
    assert (tmp_path / "ca.pem").read_bytes() != ca


@pytest.mark.parametrize("option", ["--bin", "--iin"])
@pytest.mark.parametrize("number", ["12345", "9901400000221", "99014000002X"])
def test_a_bin_or_iin_must_have_twelve_digits(tmp_path: Path, option: str, number: str) -> None:
    keys("create-ca", tmp_path)
    result = keys("issue", tmp_path, "pep", option, number)
    assert result.exit_code == 2 and "12 digits" in result.output
    assert not (tmp_path / "pep.key").exists()


@pytest.mark.parametrize("holder", ["ca", "CA", "../elsewhere", ".hidden"])
def test_a_holder_is_a_plain_file_name_other_than_the_cas(tmp_path: Path, holder: str) -> None:
    keys("create-ca", tmp_path / "pki")
    ca_key = (tmp_path / "pki" / "ca.key").read_bytes()
    result = keys("issue", tmp_path / "pki", holder, "--force")
    assert result.exit_code == 2 and "not a file name" in result.output
    assert (tmp_path / "pki" / "ca.key").read_bytes() == ca_key
    assert not (tmp_path / "elsewhere.key").exists()


def test_a_holder_gets_a_key_of_the_cas_algorithm(tmp_path: Path) -> None:
    keys("create-ca", tmp_path, "--algorithm", "gost2004")
    assert keys("issue", tmp_path, "pep", "--algorithm", "gost2004").exit_code == 0
    refused = keys("issue", tmp_path, "bank", "--algorithm", "rsa")
    assert refused.exit_code == 1 and "gost2004" in refused.output and not (tmp_path / "bank.key").exists()
    assert keys("issue", tmp_path, "bank", "--ecdsa").exit_code == 2


def test_a_forced_reissue_without_a_password_drops_the_old_pkcs12(tmp_path: Path) -> None:
    keys("create-ca", tmp_path)
    keys("issue", tmp_path, "pep", "--p12-password", "changeit")
    assert (tmp_path / "pep.p12").stat().st_mode & 0o077 == 0
    assert keys("issue", tmp_path, "pep", "--force").exit_code == 0
    assert not (tmp_path / "pep.p12").exists(), "it would hold the replaced key"


def test_revoke_needs_a_ca_and_a_certificate_and_lists_a_serial_once(tmp_path: Path) -> None:
    missing_ca = keys("revoke", tmp_path, "pep")
    assert missing_ca.exit_code == 1 and "create-ca" in missing_ca.output
    keys("create-ca", tmp_path)
    assert keys("revoke", tmp_path, "nobody").exit_code == 1
    keys("issue", tmp_path, "pep")
    assert keys("revoke", tmp_path, "pep").exit_code == 0
    again = keys("revoke", tmp_path, "pep")
    assert again.exit_code == 0 and "already revoked" in again.output
    assert len(list(load_crl((tmp_path / "ca.crl").read_bytes()))) == 1


@pytest.mark.parametrize("algorithm", ["rsa", "gost2004"])
def test_a_pkcs12_opens_in_python_and_javas_keytool(tmp_path: Path, algorithm: str) -> None:
    """Java opens the GOST file's container as it opens NCA's own; taking the key out needs NCA's provider."""
    keys("create-ca", tmp_path, "--algorithm", algorithm)
    keys("issue", tmp_path, "bank", "--bin", "990140000044", "--p12-password", "changeit")
    data = (tmp_path / "bank.p12").read_bytes()
    if algorithm == "rsa":
        key, certificate, chain = pkcs12.load_key_and_certificates(data, b"changeit")
        assert key is not None and certificate is not None and len(chain) == 1
    else:
        _, certificate = load_pkcs12(data, "changeit")
    assert organisation_bin(certificate) == "990140000044"
    keytool = shutil.which("keytool")
    if keytool is None:
        pytest.skip("no Java keytool on this machine")
    listed = subprocess.run([keytool, "-list", "-v", "-storetype", "PKCS12", "-keystore", str(tmp_path / "bank.p12"), "-storepass",
                             "changeit"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "PrivateKeyEntry" in listed.stdout and "chain length: 2" in listed.stdout


def test_crls_load_on_first_use_even_just_after_boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A monotonic clock counts from boot: an hour's refresh period must not delay the first CRL load."""
    keys("create-ca", tmp_path)
    keys("issue", tmp_path, "pep", "--bin", "990140000022")
    monkeypatch.setattr("gateway.security.crls.time.monotonic", lambda: 12.0)
    trust_store(tmp_path, refresh_seconds=3600).check(x509.load_pem_x509_certificate((tmp_path / "pep.pem").read_bytes()))
