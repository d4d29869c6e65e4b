"""The proofs a published page carries for the reader's browser, checked by the ledger's own code.

Each page of an institution or a filings list carries, for every decision it shows, a leaf hash,
index and audit path that ``ledger.merkle.verify_inclusion`` accepts against the checkpoint in the
page, whose note ``ledger.checkpoints.open_note`` opens with the log key the page names (and whose
witnesses' cosignatures ``ledger.cosignature`` accepts); the leaf hash is the hash of exactly that
decision's stored record (``integrity.prove``). ``build_site`` is shared with the browser tests.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import integrity, merkle
from ledger.application import LedgerApplication
from ledger.checkpoints import open_note
from ledger.cosignature import CosignerKey, CosignerSigner, cosigned_by, note_parts
from projections.publish import pages, read_stamp, slug
from projections.publish.proofs import FORMAT, PageProofs, Trust

AS_OF = "2026-06-01"
XIANGJIANG_PAGE = f"hunan/institutions/{slug('44860321X43010211A1001')}.html"
BLOCK = re.compile(r'<script type="application/json" id="ledger-proofs">(.*?)</script>', re.S)
WITNESSES = ("changsha", "zhuzhou")
COSIGNED_AT = 1_780_000_000


def run(root: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--db", str(root / "l.sqlite"), *args])
    return result


def signed_ledger(root: Path) -> str:
    """A demo ledger with a signed checkpoint; returns the log's verifier key."""
    for args in (["demo"], ["keygen", "--name", "demo-log", "-o", str(root / "log.key")]):
        assert run(root, *args).exit_code == 0
    assert run(root, "checkpoint", "--key", str(root / "log.key")).exit_code == 0
    return (root / "log.key.pub").read_text(encoding="utf-8").strip()


def witnesses() -> list[CosignerSigner]:
    return [CosignerSigner.generate(name) for name in WITNESSES]


def write_policy(root: Path, log_key: str, signers: list[CosignerSigner], quorum: str = "provinces") -> Path:
    lines = [f"log {log_key}"]
    lines += [f"witness {s.name} {s.verifier().encode()}" for s in signers]
    lines += [f"group provinces all {' '.join(s.name for s in signers)}", f"quorum {quorum}"]
    path = root / "policy.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cosigning(monkeypatch: pytest.MonkeyPatch, signers: list[CosignerSigner]) -> None:
    """The stored checkpoint as a witness-collecting ``ledger checkpoint`` would store it: the log's
    note with each witness's tlog-cosignature/v1 line appended."""

    def cosigned(app: Any, day: Any) -> Any:
        stamp = read_stamp(app, day)
        assert stamp.checkpoint is not None
        note = stamp.checkpoint.note
        body, _ = note_parts(note)
        lines = "".join(s.cosign(body, COSIGNED_AT) + "\n" for s in signers)
        return dataclasses.replace(stamp, checkpoint=dataclasses.replace(stamp.checkpoint, note=note + lines))

    monkeypatch.setattr(pages, "read_stamp", cosigned)


def build_site(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[CosignerSigner]]:
    """A demo ledger, signed, its checkpoint cosigned by two witnesses, published with a 2-of-2
    policy: the site's folder and the witnesses."""
    log_key = signed_ledger(root)
    signers = witnesses()
    cosigning(monkeypatch, signers)
    policy = write_policy(root, log_key, signers)
    result = run(root, "publish", "--out", str(root / "site"), "--as-of", AS_OF, "--policy", str(policy))
    assert result.exit_code == 0, result.output
    return root / "site", signers


def proofs_of(html: str) -> dict[str, Any]:
    found = BLOCK.search(html)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def shown_ids(html: str) -> set[str]:
    cells = re.findall(r'class="ids">([^<]*)<', html)
    return {i.strip() for cell in cells for i in unescape(cell).split(",") if i.strip()}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CosignerSigner]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return build_site(tmp_path_factory.mktemp("proofs"), monkeypatch)


@pytest.mark.parametrize("page", [XIANGJIANG_PAGE, "hunan/filings.html", "chongqing/filings.html"])
def test_every_decision_shown_has_a_proof_the_ledger_accepts(
    site: tuple[Path, list[CosignerSigner]], page: str
) -> None:
    folder, _ = site
    html = (folder / page).read_text(encoding="utf-8")
    data = proofs_of(html)
    assert data["format"] == FORMAT
    checkpoint, signed_by = open_note(data["checkpoint"], data["log_keys"])
    assert signed_by == ["demo-log"]
    assert sorted(cosigned_by(data["checkpoint"], [CosignerKey.parse(k) for k in data["witnesses"].values()])) == [
        "changsha",
        "zhuzhou",
    ]
    assert data["quorum"] == "provinces" and data["groups"]["provinces"] == {"k": 2, "members": list(WITNESSES)}
    hashes = [base64.b64decode(h) for h in data["hashes"]]
    assert len(set(hashes)) == len(hashes)  # each hash written once
    proven = {}
    for decision_id, index, leaf, path in data["proofs"]:
        assert merkle.verify_inclusion(hashes[leaf], index, checkpoint.size, [hashes[p] for p in path], checkpoint.root)
        proven[decision_id] = (index, hashes[leaf])
    assert data["pending"] == []  # the checkpoint covers the whole ledger
    assert set(proven) == shown_ids(html) and proven


def test_each_leaf_is_the_decision_shown_beside_it(site: tuple[Path, list[CosignerSigner]]) -> None:
    """The tie the page cannot show (a leaf holds what is never published): the ledger's own
    ``prove`` gives the same leaf, at the same index, for each decision id."""
    folder, _ = site
    data = proofs_of((folder / XIANGJIANG_PAGE).read_text(encoding="utf-8"))
    hashes = [base64.b64decode(h) for h in data["hashes"]]
    assert data["proofs"]
    app = LedgerApplication.open(str(folder.parent / "l.sqlite"))
    try:
        for decision_id, index, leaf, _ in data["proofs"]:
            bundle = integrity.prove(app, decision_id)
            assert bundle["leaf_index"] == index
            assert merkle.leaf_hash(base64.b64decode(bundle["leaf"])) == hashes[leaf]
    finally:
        app.close()


def test_no_licence_number_nor_leaf_bytes_reach_a_page(site: tuple[Path, list[CosignerSigner]]) -> None:
    folder, _ = site
    html = (folder / XIANGJIANG_PAGE).read_text(encoding="utf-8")
    data = proofs_of(html)
    assert set(data) == {
        "format",
        "checkpoint",
        "log_keys",
        "witnesses",
        "groups",
        "quorum",
        "hashes",
        "proofs",
        "pending",
    }
    assert not re.search(r"1104\d{11}", html)


def test_the_script_is_served_and_pages_without_decisions_carry_no_proofs(
    site: tuple[Path, list[CosignerSigner]],
) -> None:
    folder, _ = site
    assert "crypto.subtle.verify" in (folder / "proofs.js").read_text(encoding="utf-8")
    assert "proofs.js" in json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
    for page in ("index.html", "hunan/catalog.html", "hunan/index.html"):
        assert "ledger-proofs" not in (folder / page).read_text(encoding="utf-8"), page


def test_without_a_key_the_site_is_as_before(tmp_path: Path) -> None:
    signed_ledger(tmp_path)
    assert run(tmp_path, "publish", "--out", str(tmp_path / "site"), "--as-of", AS_OF).exit_code == 0
    assert not (tmp_path / "site" / "proofs.js").exists()
    assert "ledger-proofs" not in (tmp_path / "site" / XIANGJIANG_PAGE).read_text(encoding="utf-8")


def test_a_key_alone_gives_proofs_without_witnesses(tmp_path: Path) -> None:
    signed_ledger(tmp_path)
    result = run(
        tmp_path, "publish", "--out", str(tmp_path / "site"), "--as-of", AS_OF, "--key", str(tmp_path / "log.key.pub")
    )
    assert result.exit_code == 0, result.output
    data = proofs_of((tmp_path / "site" / "hunan/filings.html").read_text(encoding="utf-8"))
    assert data["witnesses"] == {} and data["quorum"] is None and data["proofs"]


def test_a_checkpoint_readers_would_reject_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_key = signed_ledger(tmp_path)
    other = tmp_path / "other.key"
    assert run(tmp_path, "keygen", "--name", "demo-log", "-o", str(other)).exit_code == 0
    wrong = run(tmp_path, "publish", "--out", str(tmp_path / "a"), "--as-of", AS_OF, "--key", f"{other}.pub")
    assert wrong.exit_code != 0 and "would fail in the readers' browsers" in wrong.output
    signers = witnesses()
    cosigning(monkeypatch, signers[:1])  # one of the two the quorum needs
    policy = write_policy(tmp_path, log_key, signers)
    short = run(tmp_path, "publish", "--out", str(tmp_path / "b"), "--as-of", AS_OF, "--policy", str(policy))
    assert short.exit_code != 0 and "lacks the quorum 'provinces'" in short.output
    both = run(tmp_path, "publish", "--out", str(tmp_path / "c"), "--policy", str(policy), "--key", f"{other}.pub")
    assert both.exit_code != 0 and "not both" in both.output
    assert not any(p.name in ("a", "b", "c") or ".publish-" in p.name for p in tmp_path.iterdir())


def test_the_block_cannot_end_its_script_element(tmp_path: Path) -> None:
    """An id is data, never markup: ``</script>`` in one stays inside the JSON."""
    signed_ledger(tmp_path)
    app = LedgerApplication.open(str(tmp_path / "l.sqlite"))
    stored = integrity.stored_checkpoints(app)[-1]
    key = (tmp_path / "log.key.pub").read_text(encoding="utf-8").strip()
    try:
        block = PageProofs(app, stored, Trust((key,))).block(["</script><b>", "HN-2016-0004"])
    finally:
        app.close()
    assert "<" not in block and ">" not in block
    data = json.loads(str(block))
    assert data["pending"] == ["</script><b>"] and [p[0] for p in data["proofs"]] == ["HN-2016-0004"]
