"""``gateway signatures verify``: an integrator's or auditor's offline check of a signed envelope, on the national
operator's real GOST samples and NCA's test CA, CRL and OCSP responses."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main
from tests.wire import REPO_ROOT, SAMPLES

NCA = REPO_ROOT.parent / "shared" / "peers" / "nca-test-pki"
GOST_CA = NCA / "ca" / "nca_gost_test.crt"
REQUEST = SAMPLES / "nitec-sample-sync-request-gost.xml"
RESPONSE = SAMPLES / "nitec-sample-sync-response-gost.xml"


def verify(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["signatures", "verify", *map(str, args)])


@pytest.mark.parametrize("sample", [REQUEST, RESPONSE], ids=["request", "response"])
def test_the_nit_samples_are_valid_as_of_their_time(sample: Path) -> None:
    result = verify(sample, "--at", "2019-06-01T00:00:00Z", "--trust", GOST_CA)
    assert result.exit_code == 0, result.output
    assert "GOST 34.310-2004" in result.output
    assert "BIN" in result.output and "123456789021" in result.output
    assert "123456789011" in result.output, "the holder's IIN"
    assert "ҰКО 3.0 (GOST TEST)" in result.output, "the chain names the trusted CA"
    assert "revocation  not checked" in result.output
    assert result.output.rstrip().endswith("verdict: VALID as of 2019-06-01T00:00:00Z")


def test_one_changed_body_character_says_why_not(tmp_path: Path) -> None:
    changed = tmp_path / "changed.xml"
    changed.write_bytes(REQUEST.read_bytes().replace(b"999999999999", b"999999999998"))
    result = verify(changed, "--at", "2019-06-01T00:00:00Z", "--trust", GOST_CA)
    assert result.exit_code == 1
    assert "the Body's digest does not match" in result.output
    assert "verdict: NOT VALID" in result.output


def test_the_crl_is_consulted_and_the_certificate_not_listed() -> None:
    result = verify(REQUEST, "--at", "2019-06-01T00:00:00Z", "--trust", GOST_CA, "--crl", NCA / "crl" / "nca_gost_test.crl")
    assert result.exit_code == 0, result.output
    assert "not listed in the CRL of 2022-03-29" in result.output


def test_crls_none_of_which_is_the_issuers_do_not_pass_for_a_check() -> None:
    result = verify(REQUEST, "--at", "2019-06-01T00:00:00Z", "--trust", GOST_CA, "--crl", NCA / "crl" / "nca_rsa_test.crl")
    assert result.exit_code == 1 and "no CRL of the issuer" in result.output


def test_an_expired_certificate_and_a_missing_anchor_are_not_valid() -> None:
    late = verify(REQUEST, "--at", "2021-01-01T00:00:00Z", "--trust", GOST_CA)
    assert late.exit_code == 1 and "not current at 2021-01-01T00:00:00Z" in late.output
    untrusted = verify(REQUEST, "--at", "2019-06-01T00:00:00Z")
    assert untrusted.exit_code == 1 and "no trust anchor given" in untrusted.output
    wrong_family = verify(REQUEST, "--at", "2019-06-01T00:00:00Z", "--trust", NCA / "ca" / "nca_rsa_test.crt")
    assert wrong_family.exit_code == 1 and "SCE024" in wrong_family.output


def test_an_ocsp_response_about_another_certificate_is_not_accepted() -> None:
    other = NCA / "ocsp" / "ocsp_response_ceo_sign_2004_revoked.bin"
    result = verify(REQUEST, "--at", "2019-06-01T00:00:00Z", "--trust", GOST_CA, "--ocsp-response", other)
    assert result.exit_code == 1
    assert "revocation (OCSP)" in result.output and "FAILED" in result.output
