"""Signatures of deliveries: HMAC-SHA256 of ``TIMESTAMP + "." + BODY`` with the service's signing secret."""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-AutoCall-Timestamp"
SIGNATURE_HEADER = "X-AutoCall-Signature"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=HEX``, the value of the signature header."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    stamp = str(int(timestamp))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(secret, stamp, body)}


def verify(secret: str, timestamp: str, body: bytes, header: str, *, now: float | None = None,
           tolerance_s: float = 300) -> bool:
    """What a receiver checks: the signature matches, and (given ``now``) the timestamp is recent."""
    if now is not None:
        try:
            if abs(now - int(timestamp)) > tolerance_s:
                return False
        except ValueError:
            return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)
