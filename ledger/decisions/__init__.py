"""Decision files (DECISIONS.md): parse one line into a checked ``DecisionRecord``, and back.

The schema of each kind is read off its event class in ``ledger.events`` (field names, types,
``Literal`` enumerations, ``| None`` for optional fields), so the vocabulary is written down once.
This package checks everything a single line can show on its own; what needs the ledger (does the
institution exist as of ``effective``? is this id already recorded?) is checked by
``ledger.importer`` against storage, in the same pass, before anything is written.

- ``schema``: each kind's fields, and ``DecisionRecord``;
- ``reference``: the reference parser, with every refusal (a ``DecisionError`` naming the field;
  the caller adds file and line);
- ``fast``: the fast parser (``try_parse``), which accepts only what the reference parser accepts,
  and ``parse_line``, which asks it first;
- ``stored``: records from what the ledger wrote itself (an event's state, a view's text).
"""

from ledger.decisions.fast import parse_line, parse_line_digest, try_parse
from ledger.decisions.reference import _decoder as _decoder
from ledger.decisions.reference import _parse_line as _parse_line
from ledger.decisions.reference import (
    check_correction,
    check_identifier,
    coerce,
    from_json_dict,
    parse_date,
    parse_technology_ref,
)
from ledger.decisions.schema import (
    CREATES,
    ENVELOPE,
    IDENTIFIER_FIELDS,
    MAX_DEPTH,
    REFERENCE_FIELDS,
    SUBJECT_FIELDS,
    DecisionRecord,
    FieldSpec,
    KindSpec,
    kind_specs,
    may_name_uncatalogued,
    reference_fields,
)
from ledger.decisions.stored import _TRUSTED_DECODE as _TRUSTED_DECODE
from ledger.decisions.stored import from_trusted_json_dict, record_from_state, record_from_text

# ``_parse_line`` (the reference parser of a whole line), its JSON decoder and the stored-text
# decoder stay importable from here, outside ``__all__``, for the tests that compare the parsers.
__all__ = [
    "CREATES",
    "ENVELOPE",
    "IDENTIFIER_FIELDS",
    "MAX_DEPTH",
    "REFERENCE_FIELDS",
    "SUBJECT_FIELDS",
    "DecisionRecord",
    "FieldSpec",
    "KindSpec",
    "check_correction",
    "check_identifier",
    "coerce",
    "from_json_dict",
    "from_trusted_json_dict",
    "kind_specs",
    "may_name_uncatalogued",
    "parse_date",
    "parse_line",
    "parse_line_digest",
    "parse_technology_ref",
    "record_from_state",
    "record_from_text",
    "reference_fields",
    "try_parse",
]
