"""Authorities' signatures (issue 6, "Authority"): once a jurisdiction registers its public key,
decisions attributed to it must carry its Ed25519 signature over their canonical bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from ledger import authority
from ledger.application import LedgerApplication
from ledger.checkpoints import SignerKey, generate_key
from ledger.decisions import from_json_dict
from ledger.errors import UnsignedDecision
from tests.strategies import to_jsonl

PROVINCE = "湖南省卫生健康委员会"


def registration(public_key: str, decision_id: str = "KEY-1", by: str = PROVINCE) -> dict[str, Any]:
    return {"id": decision_id, "kind": "authority.key_registered", "effective": "2024-01-01", "by": by,
            "authority": PROVINCE, "public_key": public_key}  # fmt: skip


def listing(decision_id: str, code: str = "S01") -> dict[str, Any]:
    return {"id": decision_id, "kind": "technology.listed", "effective": "2024-02-01", "by": PROVINCE,
            "catalog": "hunan", "code": code, "name": "示例技术", "class": "restricted", "version": "测试"}  # fmt: skip


def imported(app: LedgerApplication, *lines: dict[str, Any]) -> int:
    return app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="f.jsonl").recorded


def signed(line: dict[str, Any], signer: str) -> dict[str, Any]:
    return authority.sign(from_json_dict(line), SignerKey.parse(signer)).to_json_dict() | {
        "effective": line["effective"]
    }


def test_decisions_before_a_key_is_registered_need_no_signature(app: LedgerApplication) -> None:
    assert imported(app, listing("L-1")) == 1


def test_after_registration_unsigned_decisions_are_refused(app: LedgerApplication) -> None:
    _, public = generate_key("hunan")
    imported(app, registration(public))
    before = app.position()
    with pytest.raises(UnsignedDecision) as refused:
        imported(app, listing("L-1"))
    assert (refused.value.file, refused.value.line, refused.value.field) == ("f.jsonl", 1, "signature")
    assert app.position() == before


def test_signed_decisions_are_recorded_and_the_signature_kept(app: LedgerApplication) -> None:
    signer, public = generate_key("hunan")
    imported(app, registration(public))
    assert imported(app, signed(listing("L-1"), signer)) == 1
    shown = app.decision("L-1")
    assert shown.record.signature is not None
    assert authority.verify(shown.record, public)
    assert "signature" in shown.to_json_dict()
    # Export keeps it, so the exported file re-imports into a ledger that requires it.
    assert [r.to_json_dict().get("signature") for r in app.export()][-1] == shown.record.signature


def test_wrong_key_or_altered_content_is_refused(app: LedgerApplication) -> None:
    _, public = generate_key("hunan")
    other_signer, _ = generate_key("hunan")
    imported(app, registration(public))
    with pytest.raises(UnsignedDecision, match="does not verify"):
        imported(app, signed(listing("L-1"), other_signer))
    signer = generate_key("x")[0]
    tampered = signed(listing("L-2"), signer) | {"name": "改过的名称"}
    with pytest.raises(UnsignedDecision):
        imported(app, tampered)


def test_key_rotation_needs_the_old_keys_signature(app: LedgerApplication) -> None:
    old_signer, old_public = generate_key("hunan")
    new_signer, new_public = generate_key("hunan")
    imported(app, registration(old_public))
    rotation = registration(new_public, "KEY-2", by=PROVINCE)
    with pytest.raises(UnsignedDecision):
        imported(app, rotation)
    assert imported(app, signed(rotation, old_signer)) == 1
    with pytest.raises(UnsignedDecision):
        imported(app, signed(listing("L-1"), old_signer))
    assert imported(app, signed(listing("L-1"), new_signer)) == 1


def test_a_key_registered_earlier_in_the_same_file_applies_to_later_lines(app: LedgerApplication) -> None:
    _, public = generate_key("hunan")
    with pytest.raises(UnsignedDecision) as refused:
        imported(app, registration(public), listing("L-1"))
    assert refused.value.line == 2
    assert app.position() == 0


def test_an_unsigned_reimport_of_a_signed_decision_is_the_same_decision(app: LedgerApplication) -> None:
    signer, public = generate_key("hunan")
    imported(app, registration(public), signed(listing("L-1"), signer))
    assert app.import_lines(to_jsonl([listing("L-1")]).splitlines(keepends=True), source="again").unchanged == 1


def test_malformed_keys_and_signatures_are_refused(app: LedgerApplication) -> None:
    with pytest.raises(Exception, match="public_key"):
        imported(app, registration("not a key"))
    with pytest.raises(Exception, match="signature"):
        imported(app, listing("L-1") | {"signature": "abc"})


def test_cli_sign_and_record(tmp_path: Path, cli_runner: Callable[..., Result]) -> None:
    db = str(tmp_path / "l.sqlite")
    key = tmp_path / "hunan.key"
    assert cli_runner(["keygen", "--name", "hunan", "-o", str(key)], db).exit_code == 0
    public = (tmp_path / "hunan.key.pub").read_text(encoding="utf-8").strip()
    assert "PRIVATE" not in cli_runner(["keygen", "--name", "x", "-o", str(tmp_path / "x.key")], db).output
    assert cli_runner(["import", "-"], db, input=to_jsonl([registration(public)])).exit_code == 0
    unsigned = tmp_path / "unsigned.jsonl"
    unsigned.write_bytes(to_jsonl([listing("L-1"), listing("L-2", "S02")]))
    refused = cli_runner(["import", str(unsigned)], db)
    assert refused.exit_code == 3 and "field 'signature'" in refused.stderr
    signed_file = tmp_path / "signed.jsonl"
    assert cli_runner(["sign", str(unsigned), "--key", str(key), "-o", str(signed_file)], db).exit_code == 0
    assert all("signature" in json.loads(line) for line in signed_file.read_text(encoding="utf-8").splitlines())
    assert cli_runner(["import", str(signed_file)], db).exit_code == 0
    ok = cli_runner(["record", "technology.delisted", "--id", "D-1", "--effective", "2024-03-01", "--by", PROVINCE,
                     "--field", "catalog=hunan", "--field", "code=S01", "--sign", str(key)], db)  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    shown = cli_runner(["show", "D-1"], db).stdout
    assert "signature" in shown
