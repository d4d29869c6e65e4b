"""Trust policies: which log keys and which quorum of witnesses a checkpoint needs to be believed.

The format is Sigsum's trust policy (the tlog-policy format), one statement a line, ``#`` comments::

    log     <log verifier key> [<tiles URL>]
    witness <name> <witness key (cosignature/v1)> [<add-checkpoint URL prefix>]
    group   <name> <k>|all|any <member> <member>…     # members: witnesses or earlier groups
    quorum  <name>|none

A checkpoint is accepted when a log key signed it and the quorum's group is satisfied by the
witnesses whose cosignatures verify. Why a policy: one witness can be coerced or down, so a province
asks for, say, 2 of its 3 cities, and a citizen's browser for 2 of 2 provinces.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ledger.checkpoints import Checkpoint, VerifierKey, open_note
from ledger.cosignature import CosignerKey, cosigned_by
from ledger.errors import PolicyError, QuorumMissing, SignatureError

__all__ = ["Group", "Policy", "PolicyError", "QuorumMissing", "load_policy", "parse_policy"]


@dataclass(frozen=True)
class Group:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass
class Policy:
    """A parsed policy: log keys (with their URLs), witnesses, groups and the quorum group."""

    logs: dict[str, tuple[VerifierKey, str | None]] = field(default_factory=dict)
    witnesses: dict[str, tuple[CosignerKey, str | None]] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    quorum: str | None = None

    def satisfied(self, name: str, cosigned: set[str]) -> bool:
        """Whether witness or group ``name`` is satisfied by the witnesses in ``cosigned``."""
        if name in self.witnesses:
            return name in cosigned
        group = self.groups[name]
        return sum(self.satisfied(m, cosigned) for m in group.members) >= group.threshold

    def accept(self, note: bytes | str) -> tuple[Checkpoint, list[str]]:
        """The checkpoint and the witnesses that cosigned it, if a log key signed it and the quorum holds."""
        try:
            checkpoint, _ = open_note(note, [key for key, _ in self.logs.values()])
        except SignatureError as exc:
            raise QuorumMissing(f"the checkpoint is not signed by a log of the policy: {exc}") from None
        keys = [key for key, _ in self.witnesses.values()]
        by_key = {key.name: alias for alias, (key, _) in self.witnesses.items()}
        cosigned = {by_key[name] for name in cosigned_by(note, keys)}
        if self.quorum is not None and not self.satisfied(self.quorum, cosigned):
            have = ", ".join(sorted(cosigned)) or "none"
            raise QuorumMissing(f"the checkpoint lacks the quorum {self.quorum!r} (cosigned by: {have})")
        return checkpoint, sorted(cosigned)


def parse_policy(lines: Iterable[str], source: str = "policy") -> Policy:
    """Parse a policy; every mistake names ``source`` and the line."""
    policy = Policy()
    quorum_seen = False
    for number, raw in enumerate(lines, 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{source}, line {number}"
        keyword, args = words[0], words[1:]
        try:
            if keyword == "log" and len(args) in (1, 2):
                key = VerifierKey.parse(args[0])
                policy.logs[key.name] = (key, args[1] if len(args) == 2 else None)
            elif keyword == "witness" and len(args) in (2, 3):
                _new_name(policy, args[0], where)
                policy.witnesses[args[0]] = (CosignerKey.parse(args[1]), args[2] if len(args) == 3 else None)
            elif keyword == "group" and len(args) >= 3:
                policy.groups[args[0]] = _group(policy, args, where)
            elif keyword == "quorum" and len(args) == 1 and not quorum_seen:
                quorum_seen = True
                if args[0] != "none":
                    if args[0] not in policy.witnesses and args[0] not in policy.groups:
                        raise PolicyError(f"{where}: quorum names {args[0]!r}, which is not defined above")
                    policy.quorum = args[0]
            else:
                raise PolicyError(f"{where}: expected log, witness, group or one quorum line, not {raw.strip()!r}")
        except SignatureError as exc:
            raise PolicyError(f"{where}: {exc}") from None
    if not policy.logs:
        raise PolicyError(f"{source}: no log line")
    if not quorum_seen:
        raise PolicyError(f"{source}: no quorum line (write 'quorum none' to need no witness)")
    return policy


def load_policy(path: str | Path) -> Policy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the policy {path}: {exc}") from None
    return parse_policy(text.splitlines(), str(path))


def _new_name(policy: Policy, name: str, where: str) -> None:
    if name in policy.witnesses or name in policy.groups:
        raise PolicyError(f"{where}: {name!r} is defined twice")


def _group(policy: Policy, args: list[str], where: str) -> Group:
    name, threshold, members = args[0], args[1], tuple(args[2:])
    _new_name(policy, name, where)
    for member in members:
        if member not in policy.witnesses and member not in policy.groups:
            raise PolicyError(f"{where}: group {name!r} names {member!r}, which is not defined above")
    if len(set(members)) != len(members):
        raise PolicyError(f"{where}: group {name!r} names a member twice")
    if threshold == "all":
        k = len(members)
    elif threshold == "any":
        k = 1
    elif threshold.isdigit() and 1 <= int(threshold) <= len(members):
        k = int(threshold)
    else:
        raise PolicyError(f"{where}: group {name!r} needs a threshold of all, any or 1..{len(members)}")
    return Group(name, k, members)
