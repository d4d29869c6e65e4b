"""Key continuity: an authority's key is registered by itself (or by a keyed body above it) and
replaced only under its current key (or that superior's); corrections and retractions of a keyed
body's decisions carry the key that governs them (docs/reliability.md, "Trust model")."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import authority
from ledger.application import LedgerApplication
from ledger.checkpoints import SignerKey, generate_key
from ledger.decisions import from_json_dict
from ledger.errors import IncompetentDecision, UnsignedDecision
from tests.strategies import to_jsonl

PROVINCE = "湖南省卫生健康委员会"
NATION = "国家卫生健康委"
CITY = "长沙市卫生健康委员会"
HOSPITAL = "44860321X43010211A1001"


def key_of(
    authority_name: str, public_key: str, decision_id: str, by: str, effective: str = "2024-01-01"
) -> dict[str, Any]:
    return {"id": decision_id, "kind": "authority.key_registered", "effective": effective, "by": by,
            "authority": authority_name, "public_key": public_key}  # fmt: skip


def listing(decision_id: str, code: str = "S01", by: str = PROVINCE) -> dict[str, Any]:
    return {"id": decision_id, "kind": "technology.listed", "effective": "2024-02-01", "by": by,
            "catalog": "hunan", "code": code, "name": "示例技术", "class": "restricted", "version": "测试"}  # fmt: skip


def signed(line: dict[str, Any], signer: str) -> dict[str, Any]:
    return authority.sign(from_json_dict(line), SignerKey.parse(signer)).to_json_dict() | {
        "effective": line["effective"]
    }


def imported(app: LedgerApplication, *lines: dict[str, Any]) -> int:
    return app.import_lines(to_jsonl(lines).splitlines(keepends=True), source="k.jsonl").recorded


def recorded_one(app: LedgerApplication, line: dict[str, Any]) -> int:
    """The same decision through ``ledger record``'s path (``LedgerApplication.record``)."""
    return app.record(from_json_dict(line)).recorded


@pytest.fixture(params=["import", "record"])
def write(request: pytest.FixtureRequest) -> Any:
    return imported if request.param == "import" else recorded_one


def test_an_unsigned_rekey_by_another_body_is_refused(app: LedgerApplication, write: Any) -> None:
    """The attack of the issue: 国家卫生健康委 (no key of its own) re-keys the province, unsigned."""
    signer, public = generate_key("hunan")
    _, attacker = generate_key("attacker")
    assert imported(app, key_of(PROVINCE, public, "KEY-1", by=PROVINCE)) == 1
    before = app.position()
    with pytest.raises(UnsignedDecision) as refused:
        write(app, key_of(PROVINCE, attacker, "KEY-X", by=NATION))
    assert refused.value.field == "signature"
    assert app.position() == before
    # The province's own key still governs its decisions.
    assert imported(app, signed(listing("L-1"), signer)) == 1


def test_a_first_key_is_registered_by_the_authority_itself(app: LedgerApplication, write: Any) -> None:
    _, public = generate_key("hunan")
    with pytest.raises(IncompetentDecision) as refused:
        write(app, key_of(PROVINCE, public, "KEY-1", by=CITY))
    assert refused.value.field == "by"
    assert app.position() == 0
    assert write(app, key_of(PROVINCE, public, "KEY-1", by=PROVINCE)) == 1


def test_a_superior_with_a_key_registers_and_replaces_a_key(app: LedgerApplication) -> None:
    nation_signer, nation_public = generate_key("nhc")
    _, first = generate_key("hunan")
    new_signer, second = generate_key("hunan")
    imported(app, key_of(NATION, nation_public, "KEY-N", by=NATION), key_of(PROVINCE, first, "KEY-1", by=PROVINCE))
    # Unsigned by the commission: refused, though the commission is above the province.
    with pytest.raises(UnsignedDecision):
        imported(app, key_of(PROVINCE, second, "KEY-2", by=NATION))
    # Signed with the commission's key: the province has lost its key, the commission replaces it.
    assert imported(app, signed(key_of(PROVINCE, second, "KEY-2", by=NATION), nation_signer)) == 1
    assert imported(app, signed(listing("L-1"), new_signer)) == 1
    # A body below (the city) holds no power over the province's key, even signed with its own.
    city_signer, city_public = generate_key("changsha")
    imported(app, key_of(CITY, city_public, "KEY-C", by=CITY))
    with pytest.raises(IncompetentDecision):
        imported(app, signed(key_of(PROVINCE, city_public, "KEY-3", by=CITY), city_signer))


def test_a_rekey_signed_by_an_equal_bodys_key_is_refused(app: LedgerApplication) -> None:
    cq_signer, cq_public = generate_key("cq")
    _, public = generate_key("hunan")
    imported(app, key_of("重庆市卫生健康委员会", cq_public, "KEY-CQ", by="重庆市卫生健康委员会"))
    imported(app, key_of(PROVINCE, public, "KEY-1", by=PROVINCE))
    with pytest.raises((UnsignedDecision, IncompetentDecision)):
        imported(app, signed(key_of(PROVINCE, cq_public, "KEY-2", by="重庆市卫生健康委员会"), cq_signer))


def retraction(decision_id: str, target: str, by: str) -> dict[str, Any]:
    return {"id": decision_id, "kind": "decision.retracted", "effective": "2024-03-01", "by": by,
            "retracts": target, "reason": "误录"}  # fmt: skip


def correction(decision_id: str, target: str, by: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"id": decision_id, "kind": "decision.corrected", "effective": "2024-03-01", "by": by,
            "corrects": target, "fields": fields}  # fmt: skip


def test_corrections_and_retractions_of_a_keyed_bodys_decision_carry_its_key(
    app: LedgerApplication, write: Any
) -> None:
    """Issue: signed decisions could be corrected or retracted by anyone, unsigned."""
    signer, public = generate_key("hunan")
    imported(app, key_of(PROVINCE, public, "KEY-1", by=PROVINCE), signed(listing("L-1"), signer))
    before = app.position()
    for attempt in (
        retraction("R-1", "L-1", by="某人"),
        correction("C-1", "L-1", by="某人", fields={"name": "改名"}),
        correction("C-1", "L-1", by=NATION, fields={"version": "改版"}),
    ):
        with pytest.raises(UnsignedDecision) as refused:
            write(app, attempt)
        assert refused.value.field == "signature"
    assert app.position() == before
    assert write(app, signed(correction("C-1", "L-1", by=PROVINCE, fields={"version": "改版"}), signer)) == 1
    assert write(app, signed(retraction("R-1", "L-1", by=PROVINCE), signer)) == 1


def test_a_correction_recorded_by_a_body_above_with_its_key(app: LedgerApplication) -> None:
    signer, public = generate_key("hunan")
    nation_signer, nation_public = generate_key("nhc")
    imported(
        app,
        key_of(NATION, nation_public, "KEY-N", by=NATION),
        key_of(PROVINCE, public, "KEY-1", by=PROVINCE),
        signed(listing("L-1"), signer),
    )
    assert imported(app, signed(retraction("R-1", "L-1", by=NATION), nation_signer)) == 1


def test_a_correction_in_the_same_file_as_the_signed_decision(app: LedgerApplication) -> None:
    signer, public = generate_key("hunan")
    with pytest.raises(UnsignedDecision) as refused:
        imported(app, key_of(PROVINCE, public, "KEY-1", by=PROVINCE), signed(listing("L-1"), signer),
                 retraction("R-1", "L-1", by="某人"))  # fmt: skip
    assert refused.value.line == 3
    assert app.position() == 0


def test_a_correction_cannot_put_a_decision_in_a_keyed_bodys_name(app: LedgerApplication) -> None:
    _, public = generate_key("hunan")
    imported(app, key_of(PROVINCE, public, "KEY-1", by=PROVINCE), listing("L-0", by="某机构"))
    with pytest.raises(UnsignedDecision):
        imported(app, correction("C-1", "L-0", by="某机构", fields={"by": PROVINCE}))
