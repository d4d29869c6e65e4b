"""RFC 9162 (RFC 6962) Merkle trees: the hashing that makes the ledger's history tamper-evident.

Why exactly RFC 9162 §2.1 and nothing home-made: auditors, witnesses and the C2SP tooling
(``tlog-checkpoint``, ``tlog-proof``) all check proofs with these algorithms, so our roots and
proofs must be bit-for-bit the ones any RFC 9162 verifier expects. The 0x00 / 0x01 prefixes (domain
separation, §2.1.1) keep a leaf from being passed off as an interior node.

Three layers:

* Naive functions over leaf *data* (``root_hash``, ``inclusion_proof``, ``consistency_proof``): the
  RFC definitions written out, O(n). They are the reference the fast paths are tested against and
  are fine for small trees and tests.
* Verifiers (``verify_inclusion``, ``verify_consistency``): the RFC 9162 §2.1.3.2 and §2.1.4.2
  algorithms. They return ``False`` for *any* malformed input instead of raising, because their
  input comes from outside (a proof file, a network peer) and "does not verify" is the only useful
  answer to a caller deciding whether to trust it.
* Log-backed variants over leaf *hashes*: ``Frontier`` keeps the O(log n) right edge of the tree so
  appending is O(1) amortised and the root O(log n), and ``range_root`` /
  ``inclusion_proof_from`` / ``consistency_proof_from`` build proofs from a store of perfect,
  aligned subtree hashes while reading only O(log n) of them.

Storing nodes ("tiles"-like layout)
-----------------------------------
Address a node by ``(level, i)``: the perfect subtree of ``2**level`` leaves covering
``[i * 2**level, (i + 1) * 2**level)``. Level 0 holds the leaf hashes. Such a node never changes
once its last leaf is appended, so it can be written once and cached forever.
``Frontier.extend`` reports (``on_node``) exactly the nodes an append completes (the leaves plus
one per carry), so a store that writes those rows is complete for every size it has seen.

Every subtree used by RFC 9162 proofs covers ``[start, end)`` with ``start`` a multiple of the
largest power of two not above ``end - start``. Such a range splits into at most ``log2(n) + 1``
perfect aligned subtrees whose sizes are the binary digits of ``end - start``, largest first, and
its RFC hash is those subtrees folded from the right: ``H(p0, H(p1, ... H(p_{k-1}, p_k)))``. That is
``range_root``. A proof has O(log n) elements and at most one of them is not a perfect subtree, so
a proof costs O(log n) ``get_node`` reads and never reads a node outside ``[0, size)``: a store that
only ever holds completed nodes suffices, even for proofs at sizes older than the current one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
"""SHA-256 output length; every hash a verifier accepts has exactly this length."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() (RFC 9162 §2.1.1): the root of the tree with no leaves."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

GetNode = Callable[[int, int], bytes]
"""``get_node(level, i)``: hash of the perfect subtree over ``[i << level, (i + 1) << level)``."""

OnNode = Callable[[int, int, Sequence[bytes]], object]
"""``on_node(level, index, hashes)``: the perfect subtrees an append completed on ``level``, the
first of them the subtree ``(level, index)``, the others after it in order."""


# --- hashing (RFC 9162 §2.1.1) ----------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the prefix keeps a leaf distinct from any interior node."""
    return hashlib.sha256(_LEAF_PREFIX + bytes(data)).digest()


def leaf_hashes(leaves: Iterable[bytes]) -> bytes:
    """``leaf_hash`` of each leaf, end to end (a level-0 tile's bytes): one comprehension, for a
    bundle of entries at a time (tested against ``leaf_hash``)."""
    sha, prefix = hashlib.sha256, _LEAF_PREFIX
    return b"".join([sha(prefix + data).digest() for data in leaves])


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): an interior node of the tree (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (n >= 2): the RFC 9162 §2.1.1 split point ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf *hashes*, in one pass with an O(log n) stack (see ``Frontier``)."""
    frontier = Frontier()
    frontier.extend(hashes)
    return frontier.root()


def subtree_root(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) over leaf hashes (RFC 9162 §2.1.1), for any ``0 <= start <= end <= len``.

    Unlike ``range_root`` it accepts unaligned ranges, because it has all the leaves at hand.
    """
    if not 0 <= start <= end <= len(hashes):
        raise ValueError(f"range [{start}, {end}) is not within {len(hashes)} leaves")
    return root_from_hashes([hashes[i] for i in range(start, end)])


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH(D_n) of leaf *data* (RFC 9162 §2.1.1)."""
    return root_from_hashes([leaf_hash(d) for d in leaves])


# --- proof generation (RFC 9162 §2.1.3.1, §2.1.4.1) --------------------------------------------
#
# Both generators walk the RFC recursion top-down over index ranges and ask ``mth(start, end)``
# for the hash of each sibling subtree, so the same code serves the naive functions (mth computed
# from all leaf hashes) and the store-backed ones (mth = range_root over stored nodes).


def _inclusion_path(mth: Callable[[int, int], bytes], index: int, size: int) -> list[bytes]:
    """PATH(m, D_n) of RFC 9162 §2.1.3.1, siblings collected root-first then reversed."""
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            proof.append(mth(start + k, end))
            end = start + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            proof.append(mth(start, start + k))
            start += k
    proof.reverse()
    return proof


def _consistency_path(mth: Callable[[int, int], bytes], old_size: int, new_size: int) -> list[bytes]:
    """PROOF(m, D_n) = SUBPROOF(m, D_n, true) of RFC 9162 §2.1.4.1, collected root-first."""
    if old_size in (0, new_size):
        # §2.1.4.1 defines proofs for 0 < m < n only; the empty tree and an unchanged tree are
        # consistent with no proof at all (and verify_consistency expects an empty one).
        return []
    proof: list[bytes] = []
    start, end = 0, new_size
    complete = True  # the "b" flag: is D[start:old_size] a subtree the verifier already holds?
    while True:
        n, m = end - start, old_size - start
        if m == n:
            if not complete:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
                proof.append(mth(start, end))
            break
        k = _split(n)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            proof.append(mth(start + k, end))
            end = start + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            proof.append(mth(start, start + k))
            start += k
            complete = False
    proof.reverse()
    return proof


def _check_sizes(index_or_old: int, size: int, available: int, *, strict: bool) -> None:
    if size > available:
        raise ValueError(f"tree size {size} exceeds the {available} leaves given")
    if strict and not 0 <= index_or_old < size:
        raise ValueError(f"leaf index {index_or_old} is not within a tree of size {size}")
    if not strict and not 0 <= index_or_old <= size:
        raise ValueError(f"old size {index_or_old} is not within 0..{size}")


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree of the first ``size`` leaves (RFC 9162 §2.1.3.1).

    Raises ``ValueError`` for an index outside the tree: asking for it is a bug, not bad input.
    """
    _check_sizes(index, size, len(leaves), strict=True)
    hashes = [leaf_hash(leaves[i]) for i in range(size)]
    return _inclusion_path(lambda a, b: subtree_root(hashes, a, b), index, size)


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """Proof that the first ``old_size`` leaves prefix the first ``new_size`` (§2.1.4.1)."""
    _check_sizes(old_size, new_size, len(leaves), strict=False)
    hashes = [leaf_hash(leaves[i]) for i in range(new_size)]
    return _consistency_path(lambda a, b: subtree_root(hashes, a, b), old_size, new_size)


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2) ------------------------------------------------


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _as_proof(proof: object) -> list[bytes] | None:
    """The proof as a list of hashes, or None when it is not a sequence of 32-byte ``bytes``."""
    if isinstance(proof, (str, bytes, bytearray, memoryview)) or not isinstance(proof, Sequence):
        return None
    items = list(proof)
    if not all(_is_hash(p) for p in items):
        return None
    return items


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2 step by step. The ``sn == 0`` checks reject trailing proof hashes and the
    final one missing ones, so the proof length need not be checked separately. Never raises.
    """
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_count(index) and _is_count(size)):
        return False
    path = _as_proof(proof)
    if path is None or index >= size:  # step 1
        return False
    fn, sn = index, size - 1  # step 2
    r = leaf_hash  # step 3
    for p in path:  # step 4
        if sn == 0:  # 4a: proof longer than the path to the root
            return False
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)  # step 5


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree (old_size, old_root) is a prefix of (new_size, new_root).

    RFC 9162 §2.1.4.2 covers 0 < old_size < new_size. The cases it leaves out are decided so that
    nothing unprovable passes: equal sizes need an empty proof and equal roots, and size 0 is
    consistent with any tree only with an empty proof and the genuine empty-tree root (a size-0
    claim with another root is a malformed checkpoint, not a harmless one). Never raises.
    """
    if not (_is_count(old_size) and _is_count(new_size) and _is_hash(old_root) and _is_hash(new_root)):
        return False
    path = _as_proof(proof)
    if path is None or old_size > new_size:
        return False
    if old_size == new_size:
        if path or not hmac.compare_digest(old_root, new_root):
            return False
        return old_size != 0 or hmac.compare_digest(old_root, EMPTY_ROOT)
    if old_size == 0:
        return not path and hmac.compare_digest(old_root, EMPTY_ROOT)

    if not path:  # step 1
        return False
    if old_size & (old_size - 1) == 0:  # step 2: old tree is a perfect subtree, its root is implied
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # step 7
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)


# --- the log-backed tree --------------------------------------------------------------------


class Frontier:
    """The right frontier (compact range ``[0, size)``) of an append-only RFC 9162 tree.

    Why: the ledger must sign a new root after every append without re-reading the log. The tree
    of ``size`` leaves is determined by one perfect subtree per set bit of ``size`` (largest, i.e.
    leftmost, first); appending is a binary increment whose carries merge equal-sized subtrees, so
    it costs O(1) hashes amortised, and the root is those ``popcount(size)`` hashes folded from the
    right (RFC 9162 §2.1.1 splits at the largest power of two, which is exactly that fold).

    The state is ``size`` plus those hashes; persist it with ``to_bytes`` / ``from_bytes`` or
    rebuild it from a node store with ``from_get_node``.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._nodes: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The frontier's subtree hashes, leftmost (largest) first."""
        return tuple(self._nodes)

    def extend(self, leaf_hashes: Sequence[bytes], on_node: OnNode | None = None) -> None:
        """Append leaves' hashes (``leaf_hash(data)``, not the data), in order.

        ``on_node(level, index, hashes)`` hears of every perfect subtree the leaves complete: the
        leaves themselves at level 0 first, then each level's new nodes, the first at ``index``,
        in order. Writing them to a store keyed by ``(level, index)`` is what makes
        ``inclusion_proof_from`` and friends work.

        Why a level at a time: verifying and syncing fold every leaf of the log. Leaf by leaf
        that is a Python loop with a carry loop inside; here each level is one comprehension over
        pairs, the same ``n - 1`` node hashes for a fraction of the interpreter's work. A left
        child whose sibling has not come yet waits on the frontier (a set bit of the new size).
        """
        hashes = list(leaf_hashes)
        if not (set(map(type, hashes)) <= {bytes} and set(map(len, hashes)) <= {HASH_SIZE}):
            for h in hashes:
                _check_hash(h, "leaf hash")
        size = self._size
        waiting = {  # the frontier's subtrees by level: left siblings waiting for their right one
            level: self._nodes[k]
            for k, level in enumerate(lvl for lvl in range(size.bit_length() - 1, -1, -1) if size >> lvl & 1)
        }
        level, start, row = 0, size, hashes
        if on_node is not None and row:
            on_node(0, start, row)
        while row:
            if start & 1:  # the first of the row is a right child: its left sibling is waiting
                row = [waiting.pop(level), *row]
                start -= 1
            if len(row) & 1:  # the last is a left child: it waits
                waiting[level] = row[-1]
            row = _parents(row)
            level += 1
            start >>= 1
            if on_node is not None and row:
                on_node(level, start, row)
        self._size = size + len(hashes)
        self._nodes = [waiting[lvl] for lvl in sorted(waiting, reverse=True)]

    def root(self) -> bytes:
        """MTH of the ``size`` leaves appended so far, from the O(log n) frontier hashes."""
        if not self._nodes:
            return EMPTY_ROOT
        r = self._nodes[-1]
        for h in reversed(self._nodes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> Frontier:
        """An independent frontier: e.g. to compute a tentative root before committing appends."""
        return Frontier.from_nodes(self._size, self._nodes)

    def to_bytes(self) -> bytes:
        """``size`` as 8 bytes big-endian, then the frontier hashes: a compact, exact state."""
        return self._size.to_bytes(8, "big") + b"".join(self._nodes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        """Inverse of ``to_bytes``; raises ``ValueError`` if the length does not match the size."""
        if not isinstance(data, bytes) or len(data) < 8 or (len(data) - 8) % HASH_SIZE:
            raise ValueError("frontier state must be 8 bytes of size then 32-byte hashes")
        size = int.from_bytes(data[:8], "big")
        hashes = [data[i : i + HASH_SIZE] for i in range(8, len(data), HASH_SIZE)]
        return cls.from_nodes(size, hashes)

    @classmethod
    def from_nodes(cls, size: int, nodes: Sequence[bytes]) -> Frontier:
        """A frontier from its state: one hash per set bit of ``size``, largest subtree first."""
        if not _is_count(size):
            raise ValueError("frontier size must be a non-negative int")
        if len(nodes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} nodes, not {len(nodes)}")
        for h in nodes:
            _check_hash(h, "frontier node")
        frontier = cls()
        frontier._size = size
        frontier._nodes = list(nodes)
        return frontier

    @classmethod
    def from_get_node(cls, get_node: GetNode, size: int) -> Frontier:
        """Rebuild the frontier of ``size`` leaves from a store with ``popcount(size)`` reads."""
        if not _is_count(size):
            raise ValueError("frontier size must be a non-negative int")
        nodes = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                nodes.append(_get(get_node, level, start >> level))
                start += 1 << level
        return cls.from_nodes(size, nodes)

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


def _parents(row: Sequence[bytes]) -> list[bytes]:
    """The nodes over ``row``'s pairs, one level up (an odd last hash has no parent yet)."""
    sha, prefix, pairs = hashlib.sha256, _NODE_PREFIX, iter(row)
    return [sha(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]


def perfect_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a perfect subtree (``2**j`` leaf hashes, j >= 0), one level at a time.

    The caller vouches that the hashes are 32-byte ``bytes``; the length must be a power of two.
    """
    n = len(leaf_hashes)
    if n == 0 or n & (n - 1):
        raise ValueError(f"a perfect subtree has a power of two of leaves, not {n}")
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _parents(level)
    return level[0]


def _get(get_node: GetNode, level: int, index: int) -> bytes:
    h = get_node(level, index)
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise ValueError(f"get_node({level}, {index}) returned something that is not a 32-byte hash")
    return h


def range_root(get_node: GetNode, start: int, end: int) -> bytes:
    """MTH(D[start:end]) from at most ``log2(end - start) + 1`` stored perfect subtrees.

    Only ranges whose ``start`` is a multiple of the largest power of two not above
    ``end - start`` are RFC 9162 subtrees that decompose this way (every range a proof needs is
    one); others raise ``ValueError`` rather than silently returning a different hash. Example:
    ``[1, 4)`` is H(H(d1, d2), d3) as a tree of its own, but its aligned pieces ``[1, 2), [2, 4)``
    would fold to H(d1, H(d2, d3)).
    """
    if not (_is_count(start) and _is_count(end)) or start >= end:
        raise ValueError(f"[{start}, {end}) is not a non-empty range of leaves")
    n = end - start
    top = n.bit_length() - 1
    if start % (1 << top):
        raise ValueError(f"[{start}, {end}) is not aligned: start must be a multiple of {1 << top}")
    pieces: list[bytes] = []
    pos = start
    for level in range(top, -1, -1):
        if n >> level & 1:
            pieces.append(_get(get_node, level, pos >> level))
            pos += 1 << level
    r = pieces[-1]
    for h in reversed(pieces[:-1]):
        r = node_hash(h, r)
    return r


def root_from(get_node: GetNode, size: int) -> bytes:
    """The root of the first ``size`` leaves from a node store (``EMPTY_ROOT`` for size 0)."""
    if size == 0:
        return EMPTY_ROOT
    return range_root(get_node, 0, size)


def inclusion_proof_from(get_node: GetNode, index: int, size: int) -> list[bytes]:
    """``inclusion_proof`` from a node store, with O(log n) ``get_node`` reads (see module doc)."""
    if not (_is_count(index) and _is_count(size)) or index >= size:
        raise ValueError(f"leaf index {index} is not within a tree of size {size}")
    return _inclusion_path(lambda a, b: range_root(get_node, a, b), index, size)


def consistency_proof_from(get_node: GetNode, old_size: int, new_size: int) -> list[bytes]:
    """``consistency_proof`` from a node store, with O(log n) ``get_node`` reads."""
    if not (_is_count(old_size) and _is_count(new_size)) or old_size > new_size:
        raise ValueError(f"old size {old_size} is not within 0..{new_size}")
    return _consistency_path(lambda a, b: range_root(get_node, a, b), old_size, new_size)
