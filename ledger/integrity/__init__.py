"""Tamper evidence: an RFC 9162 Merkle log over every stored record, signed checkpoints, proofs.

Why: an audit ledger whose operator could quietly rewrite history is not an audit ledger. Triggers
make the tables append-only against mistakes, not against someone with the database file. What
holds against that is what transparency logs (Certificate Transparency, Trillian/Tessera,
Sigstore) give: a Merkle tree over the log whose roots the ledger signs (C2SP tlog-checkpoint), so
anyone holding a checkpoint can check that the log was only ever appended to, and anyone holding a
proof bundle can check one decision with no database at all.

Leaves (``leaf_bytes``)
    Leaf ``i`` is the ``i``-th stored record in notification order, as canonical bytes: a format
    byte, the position, the subject's UUID, its version, the topic and the state, with fixed-width
    big-endian integers and length-prefixed strings so that no two records share an encoding.
    Changing, removing or reordering any stored record therefore changes the root. PostgreSQL
    positions may have gaps, so the leaf index is not the position: ``ledger_merkle_leaves`` maps
    one to the other.

The tree beside the events (ARCHITECTURE.md rule 7)
    ``ledger_merkle_nodes(level, idx, hash)`` holds every finished perfect subtree (level 0 = leaf
    hashes, RFC 9162 §2.1.1 ``SHA-256(0x00 ‖ leaf)``), ``ledger_merkle_tree`` the size, the last
    position and the right frontier (``merkle.Frontier``). ``sync`` appends from the stored size to
    the end of the log in batches: O(1) amortised hashing per leaf, constant memory, one bulk
    insert per table per batch (``executemany`` on SQLite, ``unnest`` of arrays on PostgreSQL).
    A proof (RFC 9162 §2.1.3, §2.1.4) reads O(log n) nodes.

Checkpoints (C2SP tlog-checkpoint + signed-note, ``ledger.checkpoints``)
    ``checkpoint`` signs (origin, size, root, time) and keeps the note in ``ledger_checkpoints``.
    A log must never sign two inconsistent checkpoints, so it first checks a consistency proof
    from the node store against every stored checkpoint and refuses if one fails.

Verification (``verify``)
    Recomputes every leaf from the stored records, streaming in batches, and folds them into a
    fresh frontier; the node store is *not* trusted for the roots, which are compared with each
    signed checkpoint. The level-0 hashes written when the tree was built are compared a batch at
    a time, and leaf by leaf only where a batch differs, to name the first position where storage
    and the recorded history disagree. On a large SQLite log, helper processes read and hash
    ranges of records ahead (``_Prefetcher``) while this one compares and folds.

The decision index (``_check_index``, ``ledger.indexhash``)
    Outside the tree, so ``checkpoint`` recomputes the rows of the records it newly covers from
    their events, refuses to sign if one disagrees, and signs a digest chain of the rows as an
    extension line (``decision-index <position> <digest>``). ``verify --key`` hashes the stored
    rows under the newest verified one against it and recomputes only the rows after it; all of
    them without a key, with ``full``, or (to name them) where the digest disagrees.

Offline proofs (``prove`` / ``verify_proof``)
    A JSON bundle with the decision, its leaf bytes, the inclusion proof and the signed note, plus
    the same evidence as a C2SP ``tlog-proof`` text (leaf bytes as its ``extra`` data), checkable
    with the verifier key alone.
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
from ledger.integrity.tables import BATCH
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
