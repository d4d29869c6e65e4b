"""Proofs in the reader's browser: each page carries what ``proofs.js`` needs to check it.

A page of an institution or a filings list carries, for every decision it shows that the latest
signed checkpoint covers, the decision's leaf hash, leaf index and RFC 9162 audit path, plus that
checkpoint's signed note (with any witness cosignatures) and the keys the publisher trusts: the
log's verifier key, and from a trust policy (``ledger.policy``) the witnesses' keys and quorum.
The script served with the site checks all of it with WebCrypto (docs/publishing.md).

Why leaf hashes and not leaf bytes: a leaf holds the whole stored record, licence numbers and
free-text notes included, which are never published; SHA-256 cannot open part of its input. So
the page ties a leaf to the decision it shows by the publisher's word (the decision id beside each
proof), which anyone holding the ledger can check with ``ledger prove`` (docs/publishing.md says
how strong that is). Why one block per page, hashes listed once: the audit paths of one page's
decisions share most of their upper nodes, so each hash is written once and paths are indexes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from ledger import merkle
from ledger.checkpoints import b64encode, open_note
from ledger.errors import ConfigurationError, SignatureError
from ledger.integrity.signing import load_verifier_keys
from ledger.integrity.store import node_reader
from ledger.integrity.tables import LEAVES, open_log
from ledger.policy import Policy, PolicyError, load_policy

if TYPE_CHECKING:
    from ledger.application import LedgerApplication
    from ledger.integrity import StoredCheckpoint

FORMAT = "medtech-ledger/page-proofs@v1"
_CHUNK = 500
SCRIPT = "proofs.js"
"""The checker served beside the pages (``projections/templates/proofs.js``)."""


@dataclass(frozen=True)
class Trust:
    """The keys the publisher vouches for: the log's, and from a policy its witnesses and quorum."""

    log_keys: tuple[str, ...]
    policy: Policy | None = None

    def check(self, note: str) -> None:
        """Refuse, before anything is written, a checkpoint the pages' readers would reject."""
        try:
            if self.policy is not None:
                self.policy.accept(note)
            else:
                open_note(note, list(self.log_keys))
        except (SignatureError, PolicyError) as e:
            msg = f"the latest checkpoint would fail in the readers' browsers: {e} (nothing was published)"
            raise ConfigurationError(msg) from None

    def as_json(self) -> dict[str, Any]:
        policy = self.policy
        if policy is None:
            return {"log_keys": list(self.log_keys), "witnesses": {}, "groups": {}, "quorum": None}
        return {
            "log_keys": list(self.log_keys),
            "witnesses": {name: key.encode() for name, (key, _) in policy.witnesses.items()},
            "groups": {g.name: {"k": g.threshold, "members": list(g.members)} for g in policy.groups.values()},
            "quorum": policy.quorum,
        }


def trust_from(policy_path: str | None, key_paths: Sequence[str]) -> Trust | None:
    """What a publish vouches for: ``--policy`` (its log keys, witnesses and quorum) or the log's
    verifier key files (``--key``); None when given neither (the pages then carry no proofs)."""
    if policy_path is not None and key_paths:
        raise ConfigurationError("give --policy or --key, not both: the policy names the log's keys")
    if policy_path is not None:
        try:
            policy = load_policy(policy_path)
        except PolicyError as e:
            raise ConfigurationError(str(e)) from None
        return Trust(tuple(key.encode() for key, _ in policy.logs.values()), policy)
    if key_paths:
        return Trust(tuple(load_verifier_keys(key_paths)))
    return None


class PageProofs:
    """Proofs of the decisions a page shows, against one checkpoint; node reads are shared by
    every page of one publish (the upper levels of the tree are the same for all)."""

    def __init__(self, app: LedgerApplication, checkpoint: StoredCheckpoint, trust: Trust) -> None:
        self.app = app
        self.checkpoint = checkpoint
        self.trust = trust
        self._log = open_log(app)
        self._nodes: dict[tuple[int, int], bytes] = {}

    def block(self, decision_ids: Iterable[str]) -> Markup:
        """The page's ``<script type="application/json">`` content: safe inside the element."""
        text = json.dumps(self.data(decision_ids), ensure_ascii=False, separators=(",", ":"))
        return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))

    def data(self, decision_ids: Iterable[str]) -> dict[str, Any]:
        """What ``proofs.js`` reads: the note, the trust, every hash once, and per decision (in
        the order given) its id, leaf index, leaf hash and path as indexes into ``hashes``; the
        decisions the checkpoint does not cover yet are listed as ``pending``."""
        ids = list(dict.fromkeys(i for i in decision_ids if i))
        rows = self._rows(ids)
        size = self.checkpoint.size
        hashes: dict[bytes, int] = {}
        proofs: list[list[Any]] = []
        pending: list[str] = []
        log = self._log
        with log.db.transaction(write=False) as c:
            reader = node_reader(c, log)

            def get_node(level: int, index: int) -> bytes:
                key = (level, index)
                if key not in self._nodes:
                    self._nodes[key] = reader(level, index)
                return self._nodes[key]

            for decision_id in ids:
                row = rows.get(decision_id)
                found = None if row is None else self._leaf_index(c, row.position)
                if found is None or found >= size:
                    pending.append(decision_id)
                    continue
                path = merkle.inclusion_proof_from(get_node, found, size)
                refs = [hashes.setdefault(h, len(hashes)) for h in (get_node(0, found), *path)]
                proofs.append([decision_id, found, refs[0], refs[1:]])
        return {
            "format": FORMAT,
            "checkpoint": self.checkpoint.note,
            **self.trust.as_json(),
            "hashes": [b64encode(h) for h in hashes],
            "proofs": proofs,
            "pending": pending,
        }

    def _rows(self, ids: Sequence[str]) -> dict[str, Any]:
        """The decision index's row of each id, a bounded number of ids a query."""
        rows: dict[str, Any] = {}
        for at in range(0, len(ids), _CHUNK):
            chunk = ids[at : at + _CHUNK]
            rows.update((r.decision_id, r) for r in self.app.store.decision_rows(ids=chunk, limit=len(chunk)))
        return rows

    def _leaf_index(self, c: Any, position: int) -> int | None:
        found = c.execute(f"SELECT leaf_index FROM {self._log.t(LEAVES)} WHERE position = ?", (position,)).fetchone()
        return None if found is None else int(found[0])


def read_script() -> str:
    return (Path(__file__).parent.parent / "templates" / SCRIPT).read_text(encoding="utf-8")
