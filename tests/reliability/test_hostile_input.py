"""Hostile input (issue 6): decision files and command-line arguments built to break the ledger.

Hypothesis builds decision files of a few valid, new decisions around one hostile line — truncated
or malformed JSON, bytes that are not UTF-8, NUL bytes, a byte-order mark inside the JSON, a value
of the wrong type, a date that is not a date (``2019-02-30``), a control character or a lone
surrogate in a text, lists nested up to 200,000 deep, numbers like ``1e999999`` or with thousands
of digits, an id that collides with one already recorded or one earlier in the same file, an
unknown kind or field, a missing field, a line longer than ``MAX_LINE_BYTES`` — and imports them
with the real CLI (``ledger import FILE`` or ``-`` for stdin) into a ledger on SQLite and on
PostgreSQL that already holds ``EXAMPLE_FILE``. Every time:

* the exit code is 3 and stderr is one line ``Error: <file>, line N[, field 'x']: …`` naming the
  hostile line (and its field, where the fault is in one), never a traceback, with no raw control
  character that could drive the terminal;
* nothing of the file is written: the position and the decisions are those before, although the
  valid lines before the hostile one were checked and (past ``BATCH``) flushed in the transaction.

Arguments: hypothesis calls ``record``, ``log``, ``show``, ``catalog``, ``disclosure``, ``trail``
and ``import`` with arbitrary text (control characters, NUL, lone surrogates as a non-UTF-8 argv
brings them, huge numbers, dates that do not exist): a clear error or a normal answer, never a
traceback, and nothing written unless ``record`` was given a valid decision.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import BACKENDS, PostgresServer, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_support import decision_ids, open_ledger
from strategies import EXAMPLE_FILE, HOSPITAL, SURGEON, to_jsonl

from ledger.application import BATCH, MAX_LINE_BYTES
from ledger.decisions import kind_specs

AUTHORITY = "湖南省卫生健康委员会"
SETTINGS = settings(max_examples=100)
TEMPLATES: tuple[dict[str, Any], ...] = (
    {"kind": "penalty.imposed", "effective": "2022-09-01", "by": AUTHORITY, "institution": HOSPITAL,
     "amount_yuan": 100, "reason": "逾期整改"},
    {"kind": "inspection.recorded", "effective": "2022-05-10", "by": AUTHORITY, "institution": HOSPITAL,
     "findings": ["病历书写不规范"]},
    {"kind": "case.performed", "effective": "2019-06-01", "by": HOSPITAL, "institution": HOSPITAL,
     "technology": "hunan:S14", "physician": SURGEON, "case": "ZY-1", "level": 3},
    {"kind": "privilege.granted", "effective": "2019-02-01", "by": HOSPITAL, "institution": HOSPITAL,
     "physician": SURGEON, "level": 3, "procedures": ["hunan:S14"]},
    {"kind": "filing.submitted", "effective": "2019-05-06", "by": HOSPITAL, "institution": HOSPITAL,
     "technology": "national:G01", "technical_lead": SURGEON, "materials": ["备案表"]},
    {"kind": "panel.concluded", "effective": "2021-06-15", "by": AUTHORITY, "panel": "technical-audit",
     "technology": "hunan:S14", "institution": HOSPITAL, "members": ["甲", "乙", "丙"], "recused": [],
     "votes": {"甲": "for"}, "outcome": "pass"},
    {"kind": "correction.ordered", "effective": "2022-05-11", "by": AUTHORITY, "institution": HOSPITAL,
     "deadline": "2022-06-30"},
    {"kind": "use.suspended", "effective": "2020-02-01", "by": AUTHORITY, "institution": HOSPITAL,
     "technology": "hunan:S14", "reason": "MTM-2018#25(3)"},
)  # fmt: skip
"""Decisions valid in a ledger holding ``EXAMPLE_FILE``, one per shape of field."""

_tags = itertools.count()


def fresh(template: dict[str, Any]) -> dict[str, Any]:
    """A valid decision no ledger holds yet."""
    return {"id": f"H-{next(_tags):06d}", **template}


def dumps(d: dict[str, Any]) -> str:
    return json.dumps(d, ensure_ascii=False)


# --- hostile lines ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """A hostile line, what it is, and which field the error must name (None: the line)."""

    what: str
    line: bytes
    field: str | None
    match: str = "exact"
    """How the error names ``field``: ``exact``; ``prefix`` (a path into the value: ``votes.甲``,
    ``members[0]``); ``prefix-or-line`` (or only the line: JSON nested too deeply to parse)."""
    earlier: tuple[dict[str, Any], ...] = ()
    """Decisions the file must hold before the hostile line (for an id colliding within it)."""


def _raw(d: dict[str, Any], name: str, raw: str) -> bytes:
    """``d`` as JSON with ``name``'s value written as the raw JSON text ``raw``."""
    text = dumps({**d, name: "\x00PLACEHOLDER\x00"})
    return text.replace(json.dumps("\x00PLACEHOLDER\x00"), raw).encode("utf-8")


def _type_of(kind: str, name: str) -> Any:
    if name in ("id", "kind", "by"):
        return str
    if name == "effective":
        return "date"
    spec = kind_specs()[kind].by_name[name]
    from datetime import date
    from decimal import Decimal
    from typing import Literal, get_args, get_origin

    t = spec.type
    if t is date:
        return "date"
    if t is Decimal:
        return "number"
    if get_origin(t) is Literal:
        return "int-choice" if all(isinstance(a, int) for a in get_args(t)) else "text-choice"
    if get_origin(t) in (list, dict):
        return get_origin(t)
    return t


WRONG = {
    str: ["1", "-7", "1.5", "true", "[]", '["x"]', "{}", '{"a": 1}'],
    "date": ["20190101", '"2019-2-3"', '"2019/02/03"', '"２０１９-01-01"', '"2019-01-01T00:00"', "[]", '""'],
    "number": ['"100"', "true", "[100]", "{}", "-1", "-0.01"],
    "int-choice": ['"3"', "0", "5", "3.0", "1e999999", "-1e999999", "true", "[3]", "1" + "0" * 4000],
    "text-choice": ["1", '"nonsense"', "[]", "false"],
    list: ['"a"', "1", "{}", "[1]", '[["a"]]', "[null]"],
    dict: ["[]", '"a"', "1", '{"甲": "maybe"}', '{"丁": "for"}'],
}
"""Raw JSON values that no field of each type accepts."""


@st.composite
def wrong_type(draw: Any) -> Hostile:
    d = fresh(draw(st.sampled_from(TEMPLATES)))
    names = [n for n in d if n not in ("kind",)]
    name = draw(st.sampled_from(names))
    kind = _type_of(d["kind"], name)
    raw = draw(st.sampled_from(WRONG[kind]))
    return Hostile(
        f"wrong type ({name}: {raw[:20]})", _raw(d, name, raw), name, "prefix" if kind in (list, dict) else "exact"
    )


@st.composite
def bad_date(draw: Any) -> Hostile:
    d = fresh(draw(st.sampled_from(TEMPLATES)))
    name = "deadline" if "deadline" in d and draw(st.booleans()) else "effective"
    year = draw(st.integers(0, 9999))
    month = draw(st.integers(0, 99))
    day = draw(st.integers(0, 99))
    import calendar

    real = year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(max(year, 1), month)[1]
    if real:
        day = 30 if month == 2 else 32  # 2019-02-30 and the like
    value = f"{year:04d}-{month:02d}-{day:02d}"
    return Hostile(f"not a date ({value})", _raw(d, name, json.dumps(value)), name)


@st.composite
def bad_text(draw: Any) -> Hostile:
    """A control character or a lone surrogate (as JSON escapes) inside a text field."""
    d = fresh(draw(st.sampled_from(TEMPLATES)))
    name = draw(
        st.sampled_from([n for n, v in d.items() if isinstance(v, str) and n not in ("kind", "effective", "deadline")])
    )
    code = draw(
        st.one_of(
            st.sampled_from([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]), st.integers(0xD800, 0xDFFF)
        )
    )
    at = draw(st.integers(0, len(d[name])))
    value = (
        json.dumps(d[name][:at], ensure_ascii=False)[:-1]
        + f"\\u{code:04x}"
        + json.dumps(d[name][at:], ensure_ascii=False)[1:]
    )
    return Hostile(f"U+{code:04X} in {name}", _raw(d, name, value), name)


@st.composite
def deep(draw: Any) -> Hostile:
    depth = draw(st.one_of(st.integers(33, 400), st.integers(400, 200_000)))
    opening, closing = draw(st.sampled_from([("[", "]"), ('{"k":', "}")]))
    value = opening * depth + "1" + closing * depth
    d = fresh(draw(st.sampled_from(TEMPLATES)))
    return Hostile(f"nested {depth} deep", _raw(d, "acme.deep", value), "acme.deep", "prefix-or-line")


@st.composite
def mangled(draw: Any) -> Hostile:
    """Not a JSON object in UTF-8 at all, or not even a line of reasonable length."""
    text = dumps(fresh(draw(st.sampled_from(TEMPLATES)))).encode("utf-8")
    how = draw(
        st.sampled_from(["truncated", "bad utf-8", "nul", "bom inside", "not an object", "huge int", "too long"])
    )
    if how == "truncated":
        cut = draw(st.integers(1, len(text) - 1))
        return Hostile(how, text[:cut], None)
    if how == "bad utf-8":
        bad = draw(
            st.sampled_from(
                [b"\xff", b"\xc3\x28", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]
            )
        )
        at = draw(st.integers(0, len(text)))
        return Hostile(how, text[:at] + bad + text[at:], None)
    if how == "nul":
        at = draw(st.integers(0, len(text)))
        return Hostile(how, text[:at] + b"\x00" + text[at:], None)
    if how == "bom inside":  # between JSON tokens (inside a string it would be text)
        at = draw(st.sampled_from([1, len(text)]))
        return Hostile(how, text[:at] + "\ufeff".encode() + text[at:], None)
    if how == "not an object":
        return Hostile(how, draw(st.sampled_from([b"[]", b"[1, 2]", b"1", b'"text"', b"null", b"true"])), None)
    if how == "huge int":  # more digits than Python reads as an integer (4300)
        return Hostile(how, _raw(json.loads(text), "level", "9" * draw(st.integers(4301, 20_000))), None)
    filler = "あ" * (MAX_LINE_BYTES // 3 + draw(st.integers(1, 1000)))
    return Hostile(how, dumps({**json.loads(text), "note": filler}).encode("utf-8"), None)


@st.composite
def wrong_shape(draw: Any) -> Hostile:
    d = fresh(draw(st.sampled_from(TEMPLATES)))
    how = draw(st.sampled_from(["missing", "unknown field", "unknown kind", "id"]))
    if how == "missing":
        spec = kind_specs()[d["kind"]]
        name = draw(st.sampled_from(["id", "kind", "effective", "by", *(f.name for f in spec.fields if f.required)]))
        return Hostile(f"{name} missing", dumps({k: v for k, v in d.items() if k != name}).encode(), name)
    if how == "unknown field":
        name = draw(st.sampled_from(["colour", "Note", "hunan", "x.", "_private", "技术"]))
        return Hostile(f"unknown field {name}", dumps({**d, name: 1}).encode(), name)
    if how == "unknown kind":
        kind = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in kind_specs()))
        return Hostile("unknown kind", dumps({**d, "kind": kind}).encode(), "kind")
    bad_id = draw(st.sampled_from(["", " ", "a b", "x" * 201, "tab\there", "nbsp\u00a0", "line\u2028sep"]))
    return Hostile("bad id", dumps({**d, "id": bad_id}).encode(), "id")


@st.composite
def colliding(draw: Any) -> Hostile:
    """An id already recorded (or earlier in this file) with other content."""
    if draw(st.booleans()):
        original = draw(st.sampled_from(EXAMPLE_FILE))
        changed = {**original, "note": f"改写 {next(_tags)}"}
        return Hostile("id recorded before", to_jsonl([changed]).rstrip(b"\n"), "id")
    earlier = fresh(draw(st.sampled_from(TEMPLATES)))
    return Hostile("id earlier in the file", dumps({**earlier, "note": "改写"}).encode(), "id", earlier=(earlier,))


hostile_lines = st.one_of(wrong_type(), bad_date(), bad_text(), deep(), mangled(), wrong_shape(), colliding())


# --- the ledger under attack ------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ledger holding ``EXAMPLE_FILE``, shared by every example (each must leave it unchanged)."""
    schema = None
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        schema = server.create_schema()
        url = server.url(schema)
    else:
        url = str(tmp_path_factory.mktemp("hostile") / "ledger.sqlite")
    path = tmp_path_factory.mktemp("hostile-example") / "example.jsonl"
    path.write_bytes(to_jsonl(EXAMPLE_FILE))
    assert run_cli(["import", str(path)], url).exit_code == 0
    yield url
    if schema is not None:
        server.drop_schema(schema)


def state(url: str) -> tuple[int, list[str]]:
    with open_ledger(url) as app:
        return app.position(), decision_ids(app)


RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def refused(result: Result, source: str, line: int, hostile: Hostile) -> None:
    stderr = result.stderr
    assert result.exit_code == 3, f"{hostile.what}: exit {result.exit_code}\n{stderr}\n{result.stdout[:500]}"
    assert "Traceback" not in stderr + result.stdout
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    assert not RAW_CONTROL.search(stderr), f"raw control character in {stderr!r}"
    where = f"Error: {source}, line {line}"
    assert stderr.startswith(where), f"{hostile.what}: {stderr!r} does not start with {where!r}"
    rest = stderr[len(where) :]
    if hostile.field is None:
        assert rest.startswith(": "), f"{hostile.what}: {stderr!r}"
    elif hostile.match == "exact":
        assert rest.startswith(f", field '{hostile.field}': "), f"{hostile.what}: {stderr!r}"
    elif hostile.match == "prefix":
        assert rest.startswith(f", field '{hostile.field}"), f"{hostile.what}: {stderr!r}"
    else:
        assert rest.startswith((": ", f", field '{hostile.field}")), f"{hostile.what}: {stderr!r}"


FILES = itertools.count()


@SETTINGS
@given(
    hostile=hostile_lines,
    before=st.lists(st.sampled_from(TEMPLATES), max_size=3),
    after=st.lists(st.sampled_from(TEMPLATES), max_size=2),
    stdin=st.booleans(),
    crlf=st.booleans(),
)
def test_a_hostile_line_refuses_the_whole_file(
    target: str,
    tmp_path_factory: pytest.TempPathFactory,
    hostile: Hostile,
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    stdin: bool,
    crlf: bool,
) -> None:
    lines = [dumps(d).encode() for d in [*hostile.earlier, *map(fresh, before)]]
    hostile_at = len(lines) + 1
    lines += [hostile.line, *(dumps(fresh(d)).encode() for d in after)]
    data = b"".join(line + (b"\r\n" if crlf else b"\n") for line in lines)
    position, ids = state(target)
    if stdin:
        source, result = "<stdin>", run_cli(["import", "-"], target, input=data)
    else:
        path = tmp_path_factory.getbasetemp() / f"hostile-{next(FILES)}.jsonl"
        path.write_bytes(data)
        source, result = str(path), run_cli(["import", str(path)], target)
        path.unlink()
    refused(result, source, hostile_at, hostile)
    assert state(target) == (position, ids), f"{hostile.what}: something of the refused file was written"


def test_nothing_written_when_the_last_of_thousands_of_lines_is_refused(target: str, tmp_path: Path) -> None:
    """2.5 batches of valid lines are checked and flushed inside the file's transaction before the
    last line is refused: all of it is rolled back."""
    lines = [dumps(fresh(TEMPLATES[i % len(TEMPLATES)])) for i in range(BATCH * 5 // 2)]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join([*lines, '{"id": "LAST", "kind": "penalty.imposed"']) + "\n", encoding="utf-8")
    position, ids = state(target)
    result = run_cli(["import", str(path)], target)
    assert result.exit_code == 3, result.stderr
    assert result.stderr.startswith(f"Error: {path}, line {len(lines) + 1}: malformed JSON"), result.stderr
    assert state(target) == (position, ids)


def test_a_file_with_no_newline_is_refused_at_its_first_line(target: str, tmp_path: Path) -> None:
    path = tmp_path / "one-long-line.jsonl"
    path.write_bytes(b"[" * (3 * MAX_LINE_BYTES))
    position, ids = state(target)
    result = run_cli(["import", str(path)], target)
    assert result.exit_code == 3
    assert result.stderr == f"Error: {path}, line 1: line is longer than {MAX_LINE_BYTES} bytes\n"
    assert state(target) == (position, ids)


def test_a_byte_order_mark_starts_a_file_harmlessly(target: str, tmp_path: Path) -> None:
    decision = fresh(TEMPLATES[0])
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + dumps(decision).encode() + b"\r\n")
    position, _ = state(target)
    result = run_cli(["import", str(path)], target)
    assert result.exit_code == 0, result.stderr
    with open_ledger(target) as app:
        assert app.decision(decision["id"]).record.fields["reason"] == decision["reason"]
        assert app.store.decision_rows(after=position)[0].decision_id == decision["id"]


# --- arguments --------------------------------------------------------------------------------

NASTY = st.sampled_from([
    "", " ", "-", "--", "--help=x", "\x00", "\x1b[2J", "\udcff", "\ud800x", "²", "١٢", "1e999999",
    "99999999999999999999999999", "-1", "0", "2019-02-30", "2019-02-29", "0000-00-00", "9999-12-31",
    "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00", "NaN", "null", "[]", "{}", "[[[[[[",
    "'; DROP TABLE x; --", "%s", "?", "湖南", "hunan", "national", HOSPITAL, "EX-09", "institution:" + HOSPITAL,
    "a" * 5000, "[" * 100_000,
])  # fmt: skip
arg_text = st.one_of(NASTY, st.text(alphabet=st.characters(exclude_categories=()), max_size=30))


@st.composite
def command_lines(draw: Any) -> list[str]:
    command = draw(st.sampled_from(["record", "log", "show", "catalog", "disclosure", "trail", "import"]))
    if command == "record":
        kind = draw(st.one_of(st.sampled_from(sorted(kind_specs())), arg_text))
        args = ["record", kind, "--id", draw(arg_text), "--effective", draw(arg_text), "--by", draw(arg_text)]
        for name in draw(
            st.lists(
                st.one_of(
                    st.sampled_from(["institution", "amount_yuan", "reason", "level", "findings", "votes", "acme.x"]),
                    arg_text,
                ),
                max_size=4,
            )
        ):
            args += ["--field", f"{name}={draw(arg_text)}"]
        return args
    if command == "show":
        return ["show", draw(arg_text)]
    if command == "import":
        return ["import", draw(arg_text.filter(lambda t: t not in ("", "-")))]
    options = {
        "log": ["--subject", "--kind", "--jurisdiction", "--from", "--to", "--limit", "--format"],
        "catalog": ["--province", "--as-of", "--known-at", "--format"],
        "disclosure": ["--province", "--institution", "--as-of", "--known-at"],
        "trail": ["--province", "--institution", "--physician", "--technology", "--as-of", "--known-at"],
    }[command]
    args = [command]
    for option in draw(st.lists(st.sampled_from(options), max_size=3, unique=True)):
        args += [option, draw(arg_text)]
    return args


@settings(max_examples=100)
@given(args=command_lines())
def test_arguments_never_crash_the_command_line(target: str, args: list[str]) -> None:
    position, ids = state(target)
    result = run_cli(args, target)  # an exception would propagate here: catch_exceptions=False
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code in range(11), (args, result.exit_code, result.stderr)
    if result.exit_code:
        assert result.stderr.strip(), f"{args}: failed without saying why"
        assert "Error" in result.stderr, (args, result.stderr)
    after = state(target)
    if args[0] == "record" and result.exit_code == 0:
        assert after[0] > position and after[1][:-1] == ids
    else:
        assert after == (position, ids), f"{args}: the ledger changed"


@pytest.mark.parametrize(
    "args",
    [
        ["import", "\x00"],
        ["import", "/dev/zero"],
        ["show", "\udcff\udcfe"],
        ["log", "--subject", "\udcff"],
        ["record", "penalty.imposed", "--id", "Z\udcff1", "--effective", "2020-01-01", "--by", "x"],
        ["record", "penalty.imposed", "--id", "Z1", "--effective", "2020-01-01", "--by", "x", "--field", "\x1b[2J=1"],
        ["record", "penalty.imposed", "--id", "Z1", "--effective", "2019-02-30", "--by", "x"],
        ["record", "privilege.granted", "--id", "Z1", "--effective", "2020-01-01", "--by", "x", "--field",
         "level=1e999999"],
        ["record", "inspection.recorded", "--id", "Z1", "--effective", "2020-01-01", "--by", "x", "--field",
         "acme.x=" + "[" * 100_000],
        ["catalog", "--known-at", "99999999999999999999999999"],
        ["catalog", "--known-at", "²"],
        ["catalog", "--known-at", "١٢"],
        ["catalog", "--as-of", "0000-01-01"],
        ["trail", "--institution", HOSPITAL, "--as-of", "9999-12-31", "--known-at", "0001-01-01T00:00:00-14:00"],
    ],
)  # fmt: skip
def test_arguments_found_breaking_the_command_line(target: str, args: list[str]) -> None:
    """Each of these once ended in a traceback (issue 6); now a clear error or an answer."""
    position, ids = state(target)
    result = run_cli(args, target)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code in range(11)
    if result.exit_code:
        assert result.stderr.startswith(("Error: ", "Usage: ")), result.stderr
        assert not RAW_CONTROL.search(result.stderr.replace("\n", "")), result.stderr
    assert state(target) == (position, ids)
