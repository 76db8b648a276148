"""The revocation policy: CRL, OCSP (against the responder emulator over real HTTP) or both, fail-closed unless a
service asks for fail-open, and what /health says of an empty CRL."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from gateway.serving import BackgroundServer
from emulators.ocsp_responder import OcspResponderEmulator
from gateway.errors import GatewayError
from gateway.health import HealthCheck
from gateway.security.crls import CrlStore
from gateway.security.ocsp import OcspClient
from gateway.security.pki import Issued, create_ca, create_crl, issue_participant
from gateway.security.trust import Family, RevocationPolicy, TrustStore
from tests.conftest import free_port


@pytest.fixture(scope="module")
def ca() -> Issued:
    return create_ca()


@pytest.fixture(scope="module")
def responder(ca: Issued) -> Iterator[tuple[OcspResponderEmulator, str]]:
    emulator = OcspResponderEmulator(ca.certificate, ca.key)
    with BackgroundServer(emulator) as server:
        yield emulator, server.url


def store(ca: Issued, tmp_path: Path, policy: RevocationPolicy, responder_url: str | None, revoked: list[int] = ()) -> TrustStore:  # noqa: B006
    (tmp_path / "ca.crl").write_bytes(create_crl(ca, list(revoked)))
    client = OcspClient(responder_override=responder_url, timeout_seconds=2.0, max_age_seconds=300.0) if responder_url else None
    return TrustStore({Family.RSA: [ca.certificate]}, CrlStore([ca.certificate], [str(tmp_path / "ca.crl")], 3600), policy, client)


def holder(ca: Issued) -> x509.Certificate:
    return issue_participant(ca, "990140000022").certificate


def refusal(trust: TrustStore, certificate: x509.Certificate, fail_open: bool = False) -> GatewayError:
    with pytest.raises(GatewayError) as refused:
        trust.check(certificate, fail_open)
    return refused.value


def test_ocsp_good_passes_and_revoked_is_refused_with_its_time(ca: Issued, responder, tmp_path: Path) -> None:  # noqa: ANN001
    emulator, url = responder
    good, revoked = holder(ca), holder(ca)
    emulator.revoke(revoked.serial_number, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), x509.ReasonFlags.key_compromise)
    trust = store(ca, tmp_path, RevocationPolicy.OCSP, url)
    trust.check(good)
    refused = refusal(trust, revoked)
    assert refused.error.code == "SCE005"
    assert "revoked on 2026-01-02 03:04:05Z (OCSP)" in refused.data


def test_with_both_either_source_revokes(ca: Issued, responder, tmp_path: Path) -> None:  # noqa: ANN001
    emulator, url = responder
    listed, answered_revoked = holder(ca), holder(ca)
    emulator.revoke(answered_revoked.serial_number, datetime.now(UTC) - timedelta(hours=1))
    trust = store(ca, tmp_path, RevocationPolicy.BOTH, url, revoked=[listed.serial_number])
    assert "(CRL)" in refusal(trust, listed).data
    assert "(OCSP)" in refusal(trust, answered_revoked).data
    trust.check(holder(ca))
    crl_only = store(ca, tmp_path / "..", RevocationPolicy.CRL, None)
    crl_only.check(answered_revoked)  # the CRL does not list it, and OCSP is not asked


def test_an_unreachable_responder_is_fail_closed_unless_the_service_is_fail_open(ca: Issued, tmp_path: Path) -> None:
    trust = store(ca, tmp_path, RevocationPolicy.OCSP, f"http://127.0.0.1:{free_port()}/")
    certificate = holder(ca)
    refused = refusal(trust, certificate)
    assert refused.error.code == "SCE005" and "revocation status unknown: OCSP" in refused.data
    trust.check(certificate, fail_open=True)
    report = trust.ocsp.report()
    assert any(responder["state"] == "unreachable" for responder in report["responders"])


def test_an_unknown_certificate_is_not_good(ca: Issued, responder, tmp_path: Path) -> None:  # noqa: ANN001
    emulator, url = responder
    stranger = holder(ca)
    emulator.issued_serials = {1}
    try:
        refused = refusal(store(ca, tmp_path, RevocationPolicy.OCSP, url), stranger)
    finally:
        emulator.issued_serials = None
    assert "does not know the certificate" in refused.data


def test_a_missing_crl_is_fail_closed_and_a_known_revocation_never_fails_open(ca: Issued, tmp_path: Path) -> None:
    certificate = holder(ca)
    no_crl = TrustStore({Family.RSA: [ca.certificate]}, CrlStore([ca.certificate], [str(tmp_path / "absent.crl")], 3600))
    assert "no CRL of the issuer" in refusal(no_crl, certificate).data
    no_crl.check(certificate, fail_open=True)
    listed = store(ca, tmp_path, RevocationPolicy.CRL, None, revoked=[certificate.serial_number])
    assert "is revoked" in refusal(listed, certificate, fail_open=True).data


def test_health_reports_an_empty_crl_as_loaded_and_the_ocsp_cache(ca: Issued, responder, tmp_path: Path) -> None:  # noqa: ANN001
    _, url = responder
    trust = store(ca, tmp_path, RevocationPolicy.BOTH, url)
    trust.check(holder(ca))

    class Probe:
        def current(self) -> None:
            return None

    _, report = HealthCheck(Probe(), None, trust, trust.ocsp).report()  # type: ignore[arg-type]
    [crl] = report["crls"]
    assert crl["next_update"] is not None and crl["fresh"] is True, "an empty CRL is loaded, not missing"
    [cached] = report["ocsp"]["responses"]
    assert cached["status"] == "good" and cached["fresh"] is True


def test_a_known_revocation_wins_over_an_unknown_status_on_a_fail_open_service(ca: Issued, responder, tmp_path: Path) -> None:  # noqa: ANN001
    emulator, url = responder
    listed = holder(ca)
    # The CRL says revoked, the responder cannot be reached.
    down = store(ca, tmp_path, RevocationPolicy.BOTH, f"http://127.0.0.1:{free_port()}/", revoked=[listed.serial_number])
    assert "is revoked" in refusal(down, listed, fail_open=True).data
    # No CRL of the issuer, the responder says revoked.
    answered = holder(ca)
    emulator.revoke(answered.serial_number, datetime.now(UTC) - timedelta(hours=1))
    client = OcspClient(responder_override=url, timeout_seconds=2.0, max_age_seconds=300.0)
    no_crl = TrustStore({Family.RSA: [ca.certificate]}, CrlStore([ca.certificate], [str(tmp_path / "absent.crl")], 3600),
                        RevocationPolicy.BOTH, client)
    assert "is revoked" in refusal(no_crl, answered, fail_open=True).data


def test_a_crl_past_its_next_update_no_longer_vouches(ca: Issued, tmp_path: Path) -> None:
    certificate = holder(ca)
    (tmp_path / "ca.crl").write_bytes(create_crl(ca, [], next_update_days=1))
    crls = CrlStore([ca.certificate], [str(tmp_path / "ca.crl")], 3600)
    TrustStore({Family.RSA: [ca.certificate]}, crls).check(certificate)
    later = TrustStore({Family.RSA: [ca.certificate]}, crls, clock=lambda: datetime.now(UTC) + timedelta(days=2))
    refused = refusal(later, certificate)
    assert refused.error.code == "SCE005" and "past its nextUpdate" in refused.data
