"""The public disclosure lists, as bitemporal timelines (MTM-2018#24, #30, #40; CQ-2017 公示).

What the rules say must be public: per province the institutions filed for each restricted
technology, with filing date and authority (MTM-2018#40), suspended and stopped uses, the filed
training bases (#30) and certified trainees; per institution its restricted technologies, the
surgical grades granted and its restricted-technology cases (院务公开, #24). Each list is a
``TimelineProjection``; ``projections.views`` answers the questions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from operator import itemgetter
from typing import Any

from ledger.decisions import DecisionRecord
from ledger.events import EVENT_CLASSES
from ledger.sql import Cursor, Database
from projections.replay import Resolved
from projections.runner import FOREVER, NOW, TimelineProjection, TimelineRow, intervals, stored_text
from projections.standing import NOT_FILED, UseMachine


def _kinds(*prefixes: str) -> frozenset[str]:
    """Every kind of decision whose name starts with one of ``prefixes`` (what ``keys`` tests)."""
    return frozenset(kind for kind in EVENT_CLASSES if kind.startswith(prefixes))


def _ids(decisions: Iterable[Resolved]) -> str:
    return ",".join(d.record.id for d in decisions)


_VALID_FROM, _VALID_TO, _KNOWN_FROM, _KNOWN_TO = itemgetter(1), itemgetter(2), itemgetter(-2), itemgetter(-1)
"""The columns of a stored row (``key``, ``valid_from``, ``valid_to``, values…, ``known_from``, ``known_to``)."""


def _by_institution(db: Database, table: str, covered: Sequence[str]) -> tuple[str, str]:
    """A list's index by institution, rows held true first (``known_to``), with both time axes and
    ``covered``: a province's list of today (``Views._listed``) reads this index alone, and only
    the rows it shows, not a use's whole history (each suspension, resumption and correction
    leaves a closed row). ``(name, CREATE INDEX statement)``, as ``deferrable_indexes`` has them."""
    name = f"{table}_institution"
    columns = ", ".join(("institution", "known_to", "valid_from", "valid_to", "known_from", *covered))
    return name, f"CREATE INDEX IF NOT EXISTS {name} ON {db.table(table)} ({columns})"


class InstitutionsProjection(TimelineProjection):
    """Institutions with their province, city and licensing authority (joins every list)."""

    name = "institutions"
    table = "view_institutions"
    version = 3
    """3: the province's index covers what a list joins (2: inputs as references into the log)."""
    columns = ("institution", "name", "province", "city", "category", "level", "licensing_authority", "decision")
    kinds = frozenset({"institution.registered"})

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        # A province's lists (``Views._scope``) join its institutions in force: this index alone
        # answers, rows held true first (``known_to``), with the name and city a list shows.
        name = f"{self.table}_province"
        covering = "province, known_to, valid_from, valid_to, known_from, key, name, city"
        return [
            *super().deferrable_indexes(db),
            (name, f"CREATE INDEX IF NOT EXISTS {name} ON {db.table(self.table)} ({covering})"),
        ]

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind == "institution.registered":
            yield record.fields["institution"]

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        for d in decisions:
            f = d.record.fields
            states.append(
                (
                    d.record.effective,
                    (
                        key,
                        f["name"],
                        f["province"],
                        f["city"],
                        f["category"],
                        f["level"],
                        f["licensing_authority"],
                        d.record.id,
                    ),
                )
            )
        return intervals(states)


class PhysiciansProjection(TimelineProjection):
    """Physicians registered at institutions (their names, never their licence numbers, are public)."""

    name = "physicians"
    table = "view_physicians"
    columns = ("physician", "institution", "name", "title")
    indexes = (("institution",), ("physician",))  # physician: the names on a list of trainees or grades
    kinds = frozenset({"physician.registered", "physician.deregistered"})

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind in ("physician.registered", "physician.deregistered"):
            yield f"{record.fields['physician']}|{record.fields['institution']}"

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        physician, _, institution = key.partition("|")
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        for d in decisions:
            f = d.record.fields
            if d.record.kind == "physician.registered":
                states.append((d.record.effective, (physician, institution, f["name"], f["title"])))
            else:
                states.append((d.record.effective, None))
        return intervals(states)


NoticeOf = Callable[[DecisionRecord], tuple[date, date] | None]
"""A completion's recorded public notice (first day, last day), as the plugins read it; None if none."""
FILINGS_COLUMNS = (
    "institution",
    "technology",
    "status",
    "filing",
    "filed_on",
    "authority",
    "submitted_on",
    "pending_on",
    "halted_on",
    "decisions",
    "notice_end",
)
"""``view_filings``'s value columns (``FilingsProjection``), which ``Views.filings`` reads."""


class FilingsProjection(TimelineProjection):
    """Each institution's use of each technology, as its own decisions leave it (``UseState``).

    A row holds what ``projections.standing.standing`` needs to say where the use stands on a day:
    ``status`` (the suspension or stop in force, else ``filing``), ``filing`` (not filed, submitted,
    filed, rejected, void), ``filed_on`` and ``authority`` of the completion in force (MTM-2018#11-#12,
    #40), the latest and the earliest unanswered submission, and ``halted_on``, the recorded day of
    the suspension or stop in force (MTM-2018#25, #41-#44). ``Views.filings`` adds the catalogue and
    the grandfather date (prohibited, delisted, lapsed) on the day asked.
    """

    name = "filings"
    table = "view_filings"
    version = 5
    """5: the public notice's last day recorded on the completion in force (``notice_end``); 4: a
    use's state as ``projections.standing`` has it (filing, pending and halt dates); 3: the
    institution's index covers a list (2: inputs as references into the log)."""
    columns = FILINGS_COLUMNS

    def __init__(self, notice: NoticeOf | None = None) -> None:
        self.notice = notice
        """The public notice a plugin reads on a completion (``ledger_public_notice``, CQ-2017#二(二)):
        kept with the row, so a list reads it with the row instead of one decision per use."""

    indexes = (("technology",),)
    kinds = _kinds("filing.", "use.")

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        # On PostgreSQL without the ids (``decisions`` grows with a use's history, and an index
        # entry there must fit in a third of a page).
        covered = self.columns[1:] if db.dialect == "sqlite" else ()
        return [*super().deferrable_indexes(db), _by_institution(db, self.table, covered)]

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        kind = record.kind.split(".")[0]
        if kind in ("filing", "use"):
            yield f"{record.fields['institution']}|{record.fields['technology']}"

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        institution, _, technology = key.partition("|")
        machine = UseMachine()
        seen: list[Resolved] = []
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        completion: Resolved | None = None
        for d in decisions:
            seen.append(d)
            s = machine.apply(d)
            if s is None:
                continue
            if d.record.kind == "filing.completed" and s.filed_on == d.record.effective:
                completion = d
            values = None
            if s.status != NOT_FILED:
                notice = None
                if self.notice is not None and completion is not None and s.filed_on == completion.record.effective:
                    notice = self.notice(completion.record)
                values = (
                    institution,
                    technology,
                    s.status,
                    s.filing,
                    _iso(s.filed_on),
                    s.authority,
                    _iso(s.submitted_on),
                    _iso(s.pending_on),
                    _iso(s.halted_on),
                    _ids(seen),
                    _iso(notice[1]) if notice is not None else None,
                )
            states.append((d.record.effective, values))
        return intervals(states)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


class TrainingBasesProjection(TimelineProjection):
    """Training bases filed with the province, and stopped (MTM-2018#29-#30, #42)."""

    name = "training_bases"
    table = "view_training_bases"
    columns = ("institution", "technology", "status", "enrolment_notice", "filed_on", "decisions")
    indexes = (("institution",),)
    kinds = _kinds("training_base.")

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind.startswith("training_base."):
            yield f"{record.fields['institution']}|{record.fields['technology']}"

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        institution, _, technology = key.partition("|")
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        notice = filed = None
        seen: list[Resolved] = []
        for d in decisions:
            r = d.record
            seen.append(d)
            if r.kind == "training_base.filed":
                notice, filed = r.fields["enrolment_notice"].isoformat(), r.effective.isoformat()
                states.append((r.effective, (institution, technology, "filed", notice, filed, _ids(seen))))
            else:
                states.append((r.effective, (institution, technology, "stopped", notice, filed, _ids(seen))))
        return intervals(states)


class OneDecisionProjection(TimelineProjection):
    """A list with one row per decision (a case, a certification), in force from its effective
    date until retracted; a correction replaces the row."""

    kind: str
    keys_are_decision_ids = True

    def __init__(self) -> None:
        self.kinds = frozenset({self.kind})

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind == self.kind:
            yield record.id

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        return [TimelineRow(d.record.effective, None, self.values(d.record)) for d in decisions]

    def values(self, record: DecisionRecord) -> tuple[Any, ...]:
        return tuple(record.fields.get(c) for c in self.columns)

    def first_rows(self, key: str, position: int, record: DecisionRecord) -> list[list[Any]]:
        # ``timeline``'s one row, stored, built directly: a rebuild makes one per case.
        fields = record.fields
        values = [fields.get(c) for c in self.columns]
        return [
            [
                key,
                record.effective.isoformat(),
                FOREVER,
                *(v if v is None or type(v) is str else str(v) if type(v) is int else stored_text(v) for v in values),
                position,
                NOW,
            ]
        ]


class TraineesProjection(OneDecisionProjection):
    """Physicians certified by a training base (MTM-2018#33; HN-2018 §五)."""

    name = "trainees"
    table = "view_trainees"
    version = 3
    """3: the institution's index covers a list (2: no inputs kept)."""
    kind = "trainee.certified"
    columns = ("physician", "institution", "technology")

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        return [*super().deferrable_indexes(db), _by_institution(db, self.table, ("physician", "technology"))]


class CasesProjection(OneDecisionProjection):
    """Cases of restricted technologies reported one by one (逐例报送, MTM-2018#37).

    Beside its rows, the view keeps ``view_case_totals``: per institution and technology, how
    many of its rows the ledger still holds true, with what it takes to know when that number
    is the answer to a question (``Views.case_counts``). A province's disclosure (院务公开,
    MTM-2018#24) then reads one row per institution and technology instead of counting each of
    its cases (tens of thousands for a large province). The totals are derived from the rows alone
    (``written``): a rebuild makes the same ones, and they are not a view of their own — the
    rows stay the only bitemporal record, and a question they cannot answer is counted there.

    A total's columns: ``cases``, the rows still held true (``known_to`` = NOW); ``max_from``
    and ``min_to``, the latest ``valid_from`` and the earliest ``valid_to`` of every row the key
    ever had; ``known_from``, the last position at which a row of the key was opened or closed
    (the total holds from there on). So on a day D with ``max_from <= D < min_to``, known at a
    position N >= ``known_from``, every row held true is in force and no row was opened or
    closed after N: the count is ``cases``, exactly. (The bounds only ever widen: a correction
    that moves a case's date leaves them wider than needed, which costs a count, never an answer.)
    """

    name = "cases"
    table = "view_cases"
    version = 4
    """4: ``view_case_totals`` beside the rows (3 had an interim form of them; 2: no inputs kept)."""
    kind = "case.performed"
    columns = ("institution", "technology", "physician", "level")
    indexes = ()  # the covering index below serves every lookup by institution and technology
    totals = "view_case_totals"

    def create(self, db: Database, c: Cursor) -> None:
        super().create(db, c)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {db.table(self.totals)} (institution TEXT NOT NULL, "
            f"technology TEXT NOT NULL, cases {db.bigint} NOT NULL, max_from TEXT NOT NULL, min_to TEXT NOT NULL, "
            f"known_from {db.bigint} NOT NULL, PRIMARY KEY (institution, technology))"
            # SQLite: the rows stored in their key's order, so a province's are read in one pass each.
            + (" WITHOUT ROWID" if db.dialect == "sqlite" else "")
        )

    def drop(self, db: Database, c: Cursor) -> None:
        super().drop(db, c)
        c.execute(f"DROP TABLE IF EXISTS {db.table(self.totals)}")

    def deferrable_indexes(self, db: Database) -> list[tuple[str, str]]:
        # Counting cases where the totals cannot answer (``Views.case_counts``: another day, an
        # earlier position) reads this index alone, not the rows (docs/performance.md: a covering
        # index on ``view_cases``).
        name = f"{self.table}_counts"
        covering = "institution, technology, valid_from, valid_to, known_from, known_to"
        return [
            *super().deferrable_indexes(db),
            (name, f"CREATE INDEX IF NOT EXISTS {name} ON {db.table(self.table)} ({covering})"),
        ]

    def written(
        self, db: Database, c: Cursor, closed: Sequence[tuple[Any, ...]], opened: Sequence[Sequence[Any]]
    ) -> None:
        """The batch's rows added to the totals: one upsert per institution and technology.

        A rebuild's batch opens thousands of rows: they are grouped by institution and technology
        first, each group then summed up by C-level ``max``/``min`` over its columns."""
        groups: dict[tuple[str, str], list[Sequence[Any]]] = {}
        # A row: key, valid_from, valid_to, institution, technology, physician, level, known_from, known_to.
        for row in opened:
            group = groups.get((row[3], row[4]))
            if group is None:
                groups[(row[3], row[4])] = [row]
            else:
                group.append(row)
        totals: dict[tuple[str, str], list[Any]] = {}
        for (institution, technology), rows in groups.items():
            if institution is None or technology is None:  # pragma: no cover - both are required fields
                continue
            ends = list(map(_KNOWN_TO, rows))
            held = ends.count(NOW)
            # The last change: a held row's opening, or the closing of one opened and closed in the batch.
            changed = max(map(_KNOWN_FROM, rows))
            if held < len(ends):
                changed = max(changed, *(end for end in ends if end != NOW))
            totals[(institution, technology)] = [
                institution,
                technology,
                held,
                max(map(_VALID_FROM, rows)),
                min(map(_VALID_TO, rows)),
                changed,
            ]
        # A closed row: position, key, NOW, valid_from, valid_to, institution, technology, ….
        for position, _, _, _, _, institution, technology, *_ in closed:
            if institution is None or technology is None:  # pragma: no cover - both are required fields
                continue
            total = totals.get((institution, technology))
            if total is None:  # neither bound moves: the row was counted when it was opened
                totals[(institution, technology)] = [institution, technology, -1, "", FOREVER, position]
            else:
                total[2] -= 1
                total[5] = max(total[5], position)
        if not totals:
            return
        t = db.table(self.totals)
        columns = "institution, technology, cases, max_from, min_to, known_from"
        upsert = (
            "ON CONFLICT (institution, technology) DO UPDATE SET cases = x.cases + excluded.cases, "
            "max_from = CASE WHEN excluded.max_from > x.max_from THEN excluded.max_from ELSE x.max_from END, "
            "min_to = CASE WHEN excluded.min_to < x.min_to THEN excluded.min_to ELSE x.min_to END, "
            "known_from = CASE WHEN excluded.known_from > x.known_from THEN excluded.known_from ELSE x.known_from END"
        )
        rows = list(totals.values())
        if db.dialect != "postgres":
            c.executemany(f"INSERT INTO {t} AS x ({columns}) VALUES (?, ?, ?, ?, ?, ?) {upsert}", rows)
            return
        # PostgreSQL: psycopg sends ``executemany`` a statement per row; a binary ``COPY`` into a
        # temporary table, then one upsert from it, is far cheaper (``Cursor.insert_many``).
        c.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS ledger_case_totals_batch (institution TEXT, technology TEXT, "
            "cases BIGINT, max_from TEXT, min_to TEXT, known_from BIGINT) ON COMMIT DELETE ROWS"
        )
        c.insert_many(
            "ledger_case_totals_batch",
            columns.split(", "),
            ("text", "text", "bigint", "text", "text", "bigint"),
            rows,
        )
        c.execute(f"INSERT INTO {t} AS x ({columns}) SELECT {columns} FROM ledger_case_totals_batch {upsert}")


class PrivilegesProjection(TimelineProjection):
    """Surgical grades and procedures granted to physicians (MTM-2018#20, MTM-2009#38; 院务公开 #24)."""

    name = "privileges"
    table = "view_privileges"
    columns = ("physician", "institution", "level", "procedures", "status", "decision")
    indexes = (("institution",),)
    kinds = _kinds("privilege.")

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind.startswith("privilege."):
            yield f"{record.fields['physician']}|{record.fields['institution']}"

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        physician, _, institution = key.partition("|")
        states: list[tuple[date, tuple[Any, ...] | None]] = []
        level: Any = None
        procedures: Any = None
        for d in decisions:
            r = d.record
            if r.kind == "privilege.granted":
                level, procedures = r.fields["level"], r.fields["procedures"]
                states.append((r.effective, (physician, institution, level, procedures, "granted", r.id)))
            elif r.kind == "privilege.suspended":
                states.append((r.effective, (physician, institution, level, procedures, "suspended", r.id)))
            else:
                states.append((r.effective, (physician, institution, level, procedures, "revoked", r.id)))
        return intervals(states)


def disclosure_projections(notice: NoticeOf | None = None) -> list[TimelineProjection]:
    return [
        InstitutionsProjection(),
        PhysiciansProjection(),
        FilingsProjection(notice),
        TrainingBasesProjection(),
        TraineesProjection(),
        CasesProjection(),
        PrivilegesProjection(),
        GradingCataloguesProjection(),
    ]


class GradingCataloguesProjection(TimelineProjection):
    """Each institution's surgical grading catalogue (手术分级管理目录) in force, for its 院务公开
    (MTM-2018#24, #18): the latest ``grading_catalogue.published`` replaces the one before it whole."""

    name = "grading_catalogues"
    table = "view_grading_catalogues"
    columns = ("institution", "procedures", "version", "decision")
    indexes = (("institution",),)
    kinds = frozenset({"grading_catalogue.published"})

    def keys(self, record: DecisionRecord) -> Iterable[str]:
        if record.kind == "grading_catalogue.published":
            yield record.fields["institution"]

    def timeline(self, key: str, decisions: Sequence[Resolved]) -> list[TimelineRow]:
        return intervals(
            [
                (d.record.effective, (key, d.record.fields["procedures"], d.record.fields.get("version"), d.record.id))
                for d in decisions
            ]
        )
