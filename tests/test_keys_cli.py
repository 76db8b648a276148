"""``gateway keys``: a test CA, certificates carrying BINs that the gateway's trust store accepts, and revocation."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from gateway.cli import main
from gateway.errors import GatewayError
from gateway.security.certificates import TrustStore, organisation_bin


def test_create_issue_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "create-ca", str(tmp_path)]).exit_code == 0
    result = runner.invoke(main, ["keys", "issue", str(tmp_path), "pep", "--bin", "990140000022"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pep.key").stat().st_mode & 0o077 == 0, "private keys are readable by their owner only"
    certificate = x509.load_pem_x509_certificate((tmp_path / "pep.pem").read_bytes())
    assert organisation_bin(certificate) == "990140000022"
    store = TrustStore.from_files(tmp_path / "ca.pem", [str(tmp_path / "ca.crl")], refresh_seconds=0.001)
    store.check(certificate)
    assert runner.invoke(main, ["keys", "revoke", str(tmp_path), "pep"]).exit_code == 0
    with pytest.raises(GatewayError) as refused:
        store.check(certificate)
    assert refused.value.error.code == "SCE005"


def test_crls_load_on_first_use_even_just_after_boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A monotonic clock counts from boot: an hour's refresh period must not delay the first CRL load."""
    runner = CliRunner()
    runner.invoke(main, ["keys", "create-ca", str(tmp_path)])
    runner.invoke(main, ["keys", "issue", str(tmp_path), "pep", "--bin", "990140000022"])
    monkeypatch.setattr("gateway.security.certificates.time.monotonic", lambda: 12.0)
    store = TrustStore.from_files(tmp_path / "ca.pem", [str(tmp_path / "ca.crl")], refresh_seconds=3600)
    store.check(x509.load_pem_x509_certificate((tmp_path / "pep.pem").read_bytes()))
