"""Reading the log for the views: pages of records in order, and records read back by position.

A record is read straight from its stored state (its topic looked up in the vocabulary, never
imported; ``ledger.topics.read_state``), without making an eventsourcing event per record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ledger import canonical
from ledger.application import LedgerApplication
from ledger.decisions import DecisionRecord, record_from_state, record_from_text
from ledger.errors import StorageError, UnreadableRecord
from ledger.internals import state_decoder
from ledger.sql import Cursor, Database
from ledger.storage import EVENTS_TABLE
from ledger.topics import checked_state, event_class, kind_of, read_state

BATCH = 1000
"""Records per transaction when catching up."""
BATCH_REBUILD = 10_000
"""Records per transaction when rebuilding: fewer commits (each one a sync of the WAL)."""

T = TypeVar("T")


class LogReader:
    """Reads stored records back by position, inside the runner's transaction: what a view's
    inputs point at. The same records ``Runner`` pages through (``record_from_state`` of the
    stored state, after the mapper's cipher and compressor when the ledger has them)."""

    def __init__(self, app: LedgerApplication, db: Database) -> None:
        self._state = state_decoder(app.mapper)
        events = EVENTS_TABLE
        if db.dialect == "postgres":
            self._sql = f"SELECT notification_id, topic, state FROM {db.table(events)} WHERE notification_id IN "
        else:
            self._sql = f"SELECT rowid, topic, state FROM {events} WHERE rowid IN "

    def records(self, c: Cursor, positions: Iterable[int]) -> dict[int, DecisionRecord]:
        """The record at each position, as a view's log holds it (``as_logged``)."""
        wanted = sorted(set(positions))
        out: dict[int, DecisionRecord] = {}
        for chunk in chunks(wanted):
            c.execute(f"{self._sql}({', '.join('?' * len(chunk))})", chunk, binary=True)
            for position, topic, state in c.fetchall():
                out[int(position)] = as_logged(stored_decision(int(position), topic, state, self._state))
        if len(out) != len(wanted):
            missing = sorted(set(wanted) - set(out))[:5]
            msg = f"the views refer to records missing from the log (positions {missing}): run `ledger verify`"
            raise StorageError(msg)
        return out


def as_logged(record: DecisionRecord) -> DecisionRecord:
    """A record as a key's log holds it: for every kind but a correction that is the record; a
    correction's ``fields`` (normalised Python values when recorded) as its canonical text reads
    back, which is what views have always applied (``apply_correction`` re-checks them)."""
    if record.kind != "decision.corrected":
        return record
    return record_from_text(record_text(record))


def decision_from_state(topic: str, state: Mapping[str, Any]) -> DecisionRecord:
    """``record_from_state`` of an already decoded state of ``topic``, checked as ``stored_decision``
    checks what the runner pages through."""
    cls = event_class(topic)
    return record_from_state(cls.kind, checked_state(cls, state))


def stored_decision(position: int, topic: str, data: bytes, decode: Callable[[bytes], Any]) -> DecisionRecord:
    """The decision of the stored record at ``position``: its topic looked up, never imported, and
    its state decoded and checked (``ledger.topics.read_state``), so a record the vocabulary does
    not read is an ``UnreadableRecord`` naming its position, not a traceback in a projection."""
    try:
        cls, state = read_state(topic, data, decode)
    except UnreadableRecord as e:
        raise e.located(position=position) from None
    return record_from_state(cls.kind, state)


def _kind(topic: str) -> str:
    """The kind of decision a stored topic holds (``ledger.events:CasePerformed`` → ``case.performed``)."""
    return kind_of(topic)


def chunks(keys: Sequence[T], size: int = 500) -> Iterator[list[T]]:
    """``keys`` in lists of at most ``size``: the values of one ``IN (...)``."""
    for start in range(0, len(keys), size):
        yield list(keys[start : start + size])


_TEXTS: dict[int, tuple[DecisionRecord, str]] = {}


def record_text(record: DecisionRecord) -> str:
    """The canonical JSON of a record (what views store as a record's text), computed once per
    record of the runner's current page however many projections ask."""
    cached = _TEXTS.get(id(record))
    if cached is not None and cached[0] is record:
        return cached[1]
    text = canonical.dumps(record.to_json_dict())
    if len(_TEXTS) < 4 * BATCH_REBUILD:
        _TEXTS[id(record)] = (record, text)
    return text


def clear_texts() -> None:
    """Forget the texts ``record_text`` kept: the runner starts a new page."""
    _TEXTS.clear()
