"""In-process CPU of one transport signature: verifying a signed ~1 KB envelope (shape, canonical forms, digest,
signature) and signing one, RSA-2048 beside GOST 34.310-2004, passes interleaved so that a change in the machine's
speed touches both alike. Used by ``signed_sync.py``; runs alone too:

    .venv/bin/python bench/signing_cpu.py [--messages 300] [--passes 5]
"""
from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from common import SIGNED_ENVELOPE
from gateway.security import gost3411
from gateway.security.gost_certificates import create_gost_ca, issue_gost_participant
from gateway.security.pki import create_ca, issue_participant
from gateway.security.wssec import EnvelopeSigner, verify_envelope

TARGET_GOST_VERIFY_MS = 2.0
TARGET_GOST_SIGN_MS = 1.0


@dataclass
class Algorithm:
    """One algorithm's signer and what was measured of it, ms of CPU per message for each pass."""

    name: str
    signer: EnvelopeSigner | None  # None: the GOST hash alone
    hash_with_botan: bool = True
    verify_ms: list[float] = field(default_factory=list)
    sign_ms: list[float] = field(default_factory=list)


def envelope() -> etree._Element:
    # About 1 KB of Body, as a typical SendMessage with a person's record.
    address = "<address>Astana, Mangilik El 55/" + "x" * 480 + "</address>"
    return etree.fromstring(SIGNED_ENVELOPE.format(message_id=uuid.uuid4(), extra=address).encode())


def _cpu_ms(action: Callable[[], object], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        action()
    return (time.process_time() - started) / count * 1000


def measure(algorithms: list[Algorithm], messages: int, passes: int) -> None:
    """Sign ``messages`` envelopes and verify them, per algorithm and pass, interleaved; and hash as much as one
    GOST signature or verification does, with and without Botan (where ``sign_ms`` is the hash's time)."""
    hashed = _hashed_bytes(algorithms)
    for _ in range(passes):
        for algorithm in algorithms:
            if algorithm.signer is None:
                use_botan = algorithm.hash_with_botan
                algorithm.sign_ms.append(_cpu_ms(lambda: gost3411.gost34311(hashed, use_botan=use_botan), messages))
                continue
            signed = [etree.tostring(etree.fromstring(algorithm.signer.sign(envelope()))) for _ in range(messages)]
            parsed = iter([etree.fromstring(data) for data in signed])
            algorithm.verify_ms.append(_cpu_ms(lambda: verify_envelope(next(parsed)), messages))
            bodies = iter([envelope() for _ in range(messages)])
            algorithm.sign_ms.append(_cpu_ms(lambda: algorithm.signer.sign_in_place(next(bodies)), messages))


def _hashed_bytes(algorithms: list[Algorithm]) -> bytes:
    """As many bytes as a GOST signature hashes: the canonical Body and SignedInfo of a signed envelope."""
    signer = next(a.signer for a in algorithms if a.name.startswith("GOST") and a.signer is not None)
    signed = etree.fromstring(signer.sign(envelope()))
    parts = [signed.find("{http://schemas.xmlsoap.org/soap/envelope/}Body"),
             signed.find(".//{http://www.w3.org/2000/09/xmldsig#}SignedInfo")]
    return b"".join(etree.tostring(part, method="c14n", exclusive=True) for part in parts)


def signers() -> list[Algorithm]:
    """An RSA-2048 and a GOST 2004 participant of test CAs, then the GOST hash alone, with and without Botan."""
    rsa = issue_participant(create_ca(), "990140000022", common_name="bench caller")
    participant = issue_gost_participant(create_gost_ca(), "990140000022", common_name="bench caller")
    return [Algorithm("RSA-2048", EnvelopeSigner.from_pem(rsa.key_pem, rsa.cert_pem)),
            Algorithm("GOST-2004", EnvelopeSigner.from_pem(participant.key_pem, participant.cert_pem)),
            Algorithm(f"hash, {gost3411.hash_implementation().split()[0]} cipher", None),
            Algorithm("hash, Python cipher", None, hash_with_botan=False)]


def measured(messages: int, passes: int) -> list[Algorithm]:
    """Both algorithms measured: a warm-up pass (certificate caches, precomputed tables), then ``passes``."""
    algorithms = signers()
    measure(algorithms, min(messages, 10), 1)
    for algorithm in algorithms:
        algorithm.verify_ms.clear()
        algorithm.sign_ms.clear()
    measure(algorithms, messages, passes)
    return algorithms


def report(algorithms: list[Algorithm]) -> None:
    """Print the median pass of each, and whether GOST meets its targets."""
    print(f"GOST R 34.11-94 enciphers with {gost3411.hash_implementation()}")
    print(f"{'':10}{'verify ms':>11}{'sign ms':>9}   verify passes / sign passes")
    for algorithm in algorithms:
        if algorithm.signer is None:
            print(f"{algorithm.name:20}{statistics.median(algorithm.sign_ms):9.3f}   "
                  f"{', '.join(f'{v:.3f}' for v in algorithm.sign_ms)}  (the bytes one signature hashes)")
            continue
        print(f"{algorithm.name:10}{statistics.median(algorithm.verify_ms):11.3f}{statistics.median(algorithm.sign_ms):9.3f}   "
              f"{', '.join(f'{v:.3f}' for v in algorithm.verify_ms)} / {', '.join(f'{v:.3f}' for v in algorithm.sign_ms)}")
    measured_gost = next(a for a in algorithms if a.name.startswith("GOST"))
    verify, sign = statistics.median(measured_gost.verify_ms), statistics.median(measured_gost.sign_ms)
    print(f"GOST verify of a ~1 KB envelope: {verify:.2f} ms CPU (target <= {TARGET_GOST_VERIFY_MS}: "
          f"{'met' if verify <= TARGET_GOST_VERIFY_MS else 'NOT met'}); sign: {sign:.2f} ms (target <= "
          f"{TARGET_GOST_SIGN_MS}: {'met' if sign <= TARGET_GOST_SIGN_MS else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="messages per algorithm and pass")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    algorithms = measured(args.messages, args.passes)
    print(f"transport signature CPU in-process, {args.passes} passes x {args.messages} messages (median pass)")
    report(algorithms)


if __name__ == "__main__":
    main()
