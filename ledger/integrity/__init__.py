"""Tamper evidence: an RFC 9162 Merkle log over every stored record, signed checkpoints, proofs.

Why: an audit ledger whose operator could quietly rewrite history is not an audit ledger. Triggers
make the tables append-only against mistakes, not against someone with the database file. What
holds against that is what transparency logs (Certificate Transparency, Trillian/Tessera,
Sigstore) give: a Merkle tree over the log whose roots the ledger signs (C2SP tlog-checkpoint), so
anyone holding a checkpoint can check that the log was only ever appended to, and anyone holding a
proof bundle can check one decision with no database at all.

One module per concern, each explaining itself; this package re-exports what callers use:

``leaves``
    Leaf ``i`` is the ``i``-th stored record in notification order, as the canonical bytes of
    ``ledger.leafhash.LAYOUT`` (so changing, removing or reordering any record changes the root),
    and the careful and fast ways of reading them in bulk. PostgreSQL positions may have gaps, so
    the leaf index is not the position: ``ledger_merkle_leaves`` maps one to the other.
``tables``
    The tables beside the events (ARCHITECTURE.md rule 7) and how the others read the ledger.
``store``
    The node store, ``sync`` (append from the stored size to the end of the log, in batches) and
    proofs from O(log n) stored nodes (RFC 9162 §2.1.3, §2.1.4).
``signing``
    Checkpoints (C2SP tlog-checkpoint + signed-note, ``ledger.checkpoints``), never two
    inconsistent ones, and the key files.
``index``
    The decision index, recomputed from the events, and the digest chain checkpoints sign.
``verification``
    ``verify``: the tree recomputed from storage, never trusting stored nodes for the roots.
``readahead``
    Helper processes that read and hash ahead on a large SQLite ledger.
``bundle``
    Offline proofs (``prove`` / ``verify_proof``), checkable with the verifier key alone.
"""

from ledger.checkpoints import b64encode as base64_hash
from ledger.integrity.bundle import (
    BUNDLE_FORMAT,
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_DEPTH,
    MAX_PROOF_HASHES,
    TLOG_PROOF_HEADER,
    ProofReport,
    dump_bundle,
    load_bundle,
    prove,
    tlog_proof_text,
    verify_proof,
)
from ledger.integrity.index import INDEX_SEED, IndexCheck, index_row_bytes
from ledger.integrity.leaves import Leaf, leaf_bytes, parse_leaf
from ledger.integrity.signing import (
    StoredCheckpoint,
    checkpoint,
    default_key_path,
    default_origin,
    keygen,
    load_signer_key,
    load_verifier_keys,
    stored_checkpoints,
)
from ledger.integrity.store import TreeState, consistency_proof, inclusion_proof, root_at, sync, tree_state
from ledger.integrity.tables import BATCH, assume_tables
from ledger.integrity.verification import Disagreement, VerifyReport, verify
from ledger.leafhash import LEAF_VERSION

__all__ = [
    "BATCH",
    "BUNDLE_FORMAT",
    "INDEX_SEED",
    "LEAF_VERSION",
    "MAX_BUNDLE_BYTES",
    "MAX_BUNDLE_DEPTH",
    "MAX_PROOF_HASHES",
    "TLOG_PROOF_HEADER",
    "Disagreement",
    "IndexCheck",
    "Leaf",
    "ProofReport",
    "StoredCheckpoint",
    "TreeState",
    "VerifyReport",
    "assume_tables",
    "base64_hash",
    "checkpoint",
    "consistency_proof",
    "default_key_path",
    "default_origin",
    "dump_bundle",
    "inclusion_proof",
    "index_row_bytes",
    "keygen",
    "leaf_bytes",
    "load_bundle",
    "load_signer_key",
    "load_verifier_keys",
    "parse_leaf",
    "prove",
    "root_at",
    "stored_checkpoints",
    "sync",
    "tlog_proof_text",
    "tree_state",
    "verify",
    "verify_proof",
]
