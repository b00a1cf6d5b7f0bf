"""Read a certificate's expiry (notAfter) from its DER bytes.

A few lines of DER walking instead of importing a full X.509 library: the agent only needs
one field, and must stay small on an office gateway (see bench/agent_rss.py).
"""

from __future__ import annotations

from datetime import UTC, datetime


class CertificateError(ValueError):
    """The bytes are not a DER X.509 certificate we can read."""


def _tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    if pos + 2 > len(buf):
        raise CertificateError("truncated DER element")
    tag, first = buf[pos], buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(buf):
            raise CertificateError("unsupported DER length")
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    if pos + length > len(buf):
        raise CertificateError("DER element runs past the end")
    return tag, pos, pos + length


def _time(tag: int, raw: bytes) -> datetime:
    text = raw.decode("ascii", errors="strict")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ; years 50-99 are 19xx (RFC 5280)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise CertificateError(f"unexpected time tag 0x{tag:02x}")
    if not text.endswith("Z") or len(text) != 15:
        raise CertificateError(f"unsupported certificate time {text!r}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)


def not_after(der: bytes) -> datetime:
    """The end of the certificate's validity period."""
    try:
        tag, start, _ = _tlv(der, 0)               # Certificate SEQUENCE
        if tag != 0x30:
            raise CertificateError("not a DER certificate")
        tag, pos, _ = _tlv(der, start)             # TBSCertificate SEQUENCE
        if tag != 0x30:
            raise CertificateError("no TBSCertificate")
        tag, s, e = _tlv(der, pos)
        if tag == 0xA0:                            # [0] version, optional
            pos = e
            tag, s, e = _tlv(der, pos)
        for _ in range(3):                         # serialNumber, signature, issuer
            pos = e
            tag, s, e = _tlv(der, pos)
        if tag != 0x30:
            raise CertificateError("no Validity")
        _, _, nb_end = _tlv(der, s)                # notBefore
        tag, na_start, na_end = _tlv(der, nb_end)  # notAfter
        return _time(tag, der[na_start:na_end])
    except (IndexError, UnicodeDecodeError) as e:
        raise CertificateError(f"malformed certificate: {e}") from e
    except ValueError as e:
        if isinstance(e, CertificateError):
            raise
        raise CertificateError(f"malformed certificate time: {e}") from e
