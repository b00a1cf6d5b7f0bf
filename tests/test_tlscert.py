"""Certificate expiry from DER, checked against the cryptography library on real certs."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from agent.tlscert import CertificateError, not_after


@pytest.mark.parametrize("days", [1, 10, 400, 20000])  # 20000 days: GeneralizedTime (> 2049)
def test_matches_cryptography(days: int) -> None:
    ca = trustme.CA()
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
    cert = ca.issue_cert("example.go.id", not_after=end)
    pem = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    der = pem.public_bytes(Encoding.DER)
    assert not_after(der) == x509.load_der_x509_certificate(der).not_valid_after_utc == end


def test_garbage_is_a_clear_error() -> None:
    rng = random.Random(7)
    for n in (0, 1, 2, 5, 50, 500):
        junk = bytes(rng.randrange(256) for _ in range(n))
        with pytest.raises(CertificateError):
            not_after(junk)
    with pytest.raises(CertificateError):
        not_after(b"\x30\x84\xff\xff\xff\xff")  # length runs past the end
