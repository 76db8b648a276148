"""Stand-ins for the systems behind the gateway: the SOAP provider and PUSH recipient emulators, the three
back-office backend emulators, the OCSP responder and the business-data signer. The demo, the tests and the
benchmarks use them; the gateway itself never imports them. Run one with ``python -m emulators run NAME``
(or ``gateway-emulators run NAME``)."""
