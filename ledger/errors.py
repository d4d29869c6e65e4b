"""Every error the ledger raises on purpose, in one place.

The CLI maps each class to a message and its ``exit_code`` (1 for the base; 2 stays click's
usage error), so a user never sees a
traceback for bad input. Callers of the Python API catch ``LedgerError`` for anything the ledger
refuses, or a subclass for one kind of refusal.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of everything the ledger refuses or reports as broken."""

    exit_code: int = 1


class DecisionError(LedgerError):
    """A decision was refused (DECISIONS.md, "Refused"): says where, so it can be fixed.

    ``file`` is the decision file's name (``<stdin>``, ``<record>`` for ``ledger record``), ``line``
    its 1-based line, ``field`` the offending field (``None`` when the line as a whole is wrong).
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.field = field

    def located(self, *, file: str | None = None, line: int | None = None) -> DecisionError:
        """The same error, with the file and line filled in where the raiser did not know them."""
        if file is not None and self.file is None:
            self.file = file
        if line is not None and self.line is None:
            self.line = line
        return self

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class MalformedDecision(DecisionError):
    """The line is not a JSON object in UTF-8, or a field has the wrong type or an invalid value."""


class UnknownKind(DecisionError):
    """The ``kind`` is none of DECISIONS.md's and none a plugin added."""


class UnknownReference(DecisionError):
    """A technology, institution or physician the ledger does not know as of ``effective``."""


class ConflictingDecision(DecisionError):
    """An ``id`` already in the ledger with different content: decisions are facts, never rewritten."""


class UnknownDecision(DecisionError):
    """A correction or retraction names a decision the ledger does not hold."""


class InvalidPanel(DecisionError):
    """A panel's votes name someone who is not a member or who recused."""


class UnsignedDecision(DecisionError):
    """A decision attributed to a jurisdiction with a registered key lacks a valid signature."""


class IncompetentDecision(DecisionError):
    """A body decided what it cannot decide (ledger.competence): a hospital amending a catalogue,
    a province listing a prohibited technology, a key registered by a body that holds no key over it."""


class NotFound(LedgerError):
    """A lookup (a decision id, a subject) found nothing; not an error in the ledger itself."""

    exit_code = 4


class ConfigurationError(LedgerError):
    """The database URL, a key file, an environment variable or an option is unusable."""

    exit_code = 5


class StorageError(LedgerError):
    """The database refused or failed an operation (locked too long, unreachable, schema too new)."""

    exit_code = 6


class ConcurrencyError(StorageError):
    """Another writer changed the same subject first and retries did not resolve it."""


class CalendarError(LedgerError):
    """A working-day count needs a year the calendar has no official schedule for.

    Raised instead of guessing: the fix is to add that year's 放假调休安排 as data.
    """

    exit_code = 7


class PluginError(LedgerError):
    """A plugin failed to load, implements an unknown hook, or contributed something invalid."""

    exit_code = 8


class IntegrityError(LedgerError):
    """Storage and the signed history disagree: the log was changed after it was recorded."""

    exit_code = 9


class SignatureError(LedgerError):
    """A signature, key or signed note does not verify or cannot be parsed."""

    exit_code = 10


class UnreadableRecord(IntegrityError):
    """A stored record cannot be read back: its topic is not in the vocabulary (topics are looked
    up, never imported) or its state does not decode to its kind's fields. Names where it is: the
    position and decision id where the reader knows them, else the subject's id and version."""

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        decision_id: str | None = None,
        subject_id: object = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.decision_id = decision_id
        self.subject_id = subject_id
        self.version = version

    def located(
        self,
        *,
        position: int | None = None,
        decision_id: str | None = None,
        subject_id: object = None,
        version: int | None = None,
    ) -> UnreadableRecord:
        """The same error, with what the raiser did not know filled in."""
        self.position = self.position if position is None else position
        self.decision_id = self.decision_id if decision_id is None else decision_id
        self.subject_id = self.subject_id if subject_id is None else subject_id
        self.version = self.version if version is None else version
        return self

    def __str__(self) -> str:
        if self.position is not None:
            where = f"the record at position {self.position}"
        elif self.subject_id is not None:
            where = f"the record of subject id {self.subject_id} version {self.version}"
        else:
            where = "a stored record"
        if self.decision_id is not None:
            where += f" (decision {self.decision_id!r})"
        return f"{where} cannot be read: {self.message}; run `ledger verify`"


class MalformedProof(IntegrityError):
    """A proof bundle is not one: not JSON, a key twice, nested too deeply, a field missing, of
    the wrong type or not canonical base64. Nothing in it was decoded or believed."""

    exit_code = 11


class PolicyError(ConfigurationError):
    """A trust policy (``ledger.policy``) is unusable: its file is malformed (file and line in the
    message), or there is no checkpoint to hold to it."""


class QuorumMissing(SignatureError):
    """A checkpoint lacks what its trust policy asks: the signature of one of the policy's logs, or
    the cosignatures of the quorum of witnesses. Its own code: a script tells "the witnesses have
    not (yet) cosigned" from a bad signature."""

    exit_code = 13


class ForkDetected(IntegrityError):
    """A followed log showed a history that contradicts one it showed before (a smaller size, another
    root for the same size, or no consistency proof): the evidence was kept (``ledger.follow``)."""

    exit_code = 12
