"""Authorities' signatures: who may write in whose name.

A jurisdiction or institution registers its Ed25519 public key with an
``authority.key_registered`` decision. From then on, every decision recorded with ``by`` equal to
that authority must carry ``signature``: the base64 Ed25519 signature of the decision's canonical
bytes (``DecisionRecord.signing_bytes``: key-sorted canonical JSON without the signature). Keys are
the signed-note keys of ``ledger.checkpoints`` (``ledger keygen``), so one tool makes both.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses

from ledger.checkpoints import SignerKey, VerifierKey
from ledger.decisions import DecisionRecord
from ledger.errors import SignatureError


def sign(record: DecisionRecord, signer: SignerKey) -> DecisionRecord:
    """``record`` with its signature by ``signer`` (any previous signature replaced)."""
    signature = base64.b64encode(signer.sign(record.signing_bytes())).decode("ascii")
    return dataclasses.replace(record, signature=signature)


def verify(record: DecisionRecord, public_key: str) -> bool:
    """Does ``record.signature`` verify with ``public_key`` (a verifier key string)? Never raises."""
    if record.signature is None:
        return False
    try:
        key = VerifierKey.parse(public_key)
        raw = base64.b64decode(record.signature, validate=True)
    except (SignatureError, binascii.Error, ValueError):
        return False
    return key.verify(record.signing_bytes(), raw)
