"""Witnesses: tlog-cosignature/v1 checked against a cosignature no one here made, the
tlog-witness ``add-checkpoint`` rules (each status code), its atomic state, the HTTP server and
client, and trust policies with quorums."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.checkpoints import Checkpoint, generate_key, sign
from ledger.cosignature import CosignerKey, CosignerSigner, cosigned_by, note_parts
from ledger.errors import SignatureError
from ledger.merkle import consistency_proof, root_hash
from ledger.policy import PolicyError, QuorumMissing, parse_policy
from ledger.witness import Submission, Witness, WitnessRefusal, WitnessState, parse_submission
from ledger.witness_http import WitnessPeer, collect, make_server

MIRROR = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "tlog-tiles" / "sunlight-mirror"
MIRROR_KEY = "mirror.example.org+3fb148ef+BAAjjch9GyYz0sJsJx7ALhbdAtz2ov0unbzSl1vMp94O"
ORIGIN = "ledger.example/national"
LOG_SIGNER, LOG_VERIFIER = generate_key(ORIGIN)
LEAVES = [f"decision {i}".encode() for i in range(40)]


def note(size: int, leaves: list[bytes] = LEAVES, signer: str = LOG_SIGNER) -> bytes:
    return sign(Checkpoint(ORIGIN, size, root_hash(leaves[:size])), signer).encode()


def submission(old: int, size: int, leaves: list[bytes] = LEAVES) -> bytes:
    proof = consistency_proof(leaves, old, size) if 0 < old < size else []
    return Submission(old, tuple(proof), note(size, leaves)).encode()


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    return Witness(
        CosignerSigner.generate("hunan.example/witness"),
        {ORIGIN: [LOG_VERIFIER]},
        WitnessState(tmp_path / "w.sqlite"),
        clock=lambda: 1_767_139_200,
    )


@pytest.mark.skipif(not MIRROR.is_dir(), reason=f"tlog-tiles vectors not found at {MIRROR}")
def test_sunlights_cosignature_verifies_and_no_single_byte_change_does() -> None:
    published = (MIRROR / "checkpoint").read_bytes()
    key = CosignerKey.parse(MIRROR_KEY)
    assert cosigned_by(published, [key]) == {"mirror.example.org": 1_767_139_200}
    # the published private key (SHA-256 of a phrase) reproduces the line byte for byte
    signer = CosignerSigner("mirror.example.org", hashlib.sha256(b"skylight test mirror key").digest())
    body, lines = note_parts(published)
    assert signer.cosign(body, 1_767_139_200) == lines[0]
    for i in range(len(published)):
        for flip in (0x01, 0x80):
            changed = published[:i] + bytes([published[i] ^ flip]) + published[i + 1 :]
            try:
                accepted = cosigned_by(changed, [key])
            except SignatureError:
                continue
            assert accepted == {}, f"byte {i} ^ {flip:#x} still verified"


def test_a_witness_cosigns_a_growing_log(witness: Witness) -> None:
    first = witness.add_checkpoint(submission(0, 3))
    key = witness.signer.verifier()
    assert cosigned_by(note(3).decode() + first, [key]) == {key.name: 1_767_139_200}
    witness.add_checkpoint(submission(3, 17))
    witness.add_checkpoint(submission(17, 17))  # the same tree again is cosigned again
    assert witness.state.latest(ORIGIN) == (17, root_hash(LEAVES[:17]))


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda: b"old 01\n\n" + note(3), 400),
        (lambda: b"nonsense", 400),
        (lambda: submission(0, 3).replace(ORIGIN.encode(), b"elsewhere.example/log", 1), 404),
        (lambda: Submission(0, (), note(3, signer=generate_key(ORIGIN)[0])).encode(), 403),
        (lambda: Submission(9, (), note(3)).encode(), 400),
        (lambda: Submission(0, (bytes(32),), note(3)).encode(), 422),
    ],
)
def test_each_refusal_has_its_status(witness: Witness, make: object, status: int) -> None:
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(make())  # type: ignore[operator]
    assert refused.value.status == status
    assert witness.state.latest(ORIGIN) is None


def test_a_stale_size_gets_409_with_the_stored_size(witness: Witness) -> None:
    witness.add_checkpoint(submission(0, 10))
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(submission(5, 12))
    assert (refused.value.status, refused.value.size) == (409, 10)


def test_a_bad_proof_is_422_and_a_fork_is_kept_as_evidence(witness: Witness) -> None:
    witness.add_checkpoint(submission(0, 10))
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(Submission(10, tuple(bytes(32) for _ in range(3)), note(12)).encode())
    assert refused.value.status == 422
    forked = [*LEAVES[:4], b"rewritten", *LEAVES[5:]]
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(Submission(10, (), note(10, forked)).encode())
    assert refused.value.status == 409
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(submission(10, 12, forked))
    assert refused.value.status == 422
    assert [status for status, _, _ in witness.state.evidence(ORIGIN)] == [422, 409, 422]
    assert witness.state.latest(ORIGIN) == (10, root_hash(LEAVES[:10]))


def test_concurrent_submissions_never_roll_the_size_back(witness: Witness) -> None:
    witness.add_checkpoint(submission(0, 5))
    results: list[int] = []

    def go(size: int) -> None:
        try:
            witness.add_checkpoint(submission(5, size))
            results.append(size)
        except WitnessRefusal as refusal:
            results.append(-refusal.status)

    threads = [threading.Thread(target=go, args=(size,)) for size in (20, 30, 12, 25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r > 0]
    assert len(winners) == 1 and sorted(r for r in results if r < 0) == [-409, -409, -409]
    assert witness.state.latest(ORIGIN) == (winners[0], root_hash(LEAVES[: winners[0]]))


def test_parse_submission_round_trips() -> None:
    body = submission(3, 17)
    parsed = parse_submission(body)
    assert parsed.old_size == 3 and parsed.encode() == body


@pytest.fixture
def two_witnesses(tmp_path: Path) -> Iterator[list[tuple[Witness, WitnessPeer]]]:
    out = []
    servers = []
    for name in ("hunan.example/witness", "chongqing.example/witness"):
        w = Witness(
            CosignerSigner.generate(name), {ORIGIN: [LOG_VERIFIER]}, WitnessState(tmp_path / f"{name[:5]}.sqlite")
        )
        server = make_server(w)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        out.append((w, WitnessPeer(w.signer.verifier(), f"http://127.0.0.1:{server.server_address[1]}")))
    yield out
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_log_collects_cosignatures_over_http_and_a_fork_reaches_no_quorum(
    two_witnesses: list[tuple[Witness, WitnessPeer]],
) -> None:
    peers = [peer for _, peer in two_witnesses]
    policy = parse_policy(
        [
            f"log {LOG_VERIFIER}",
            *(f"witness w{i} {peer.key.encode()} {peer.url}" for i, peer in enumerate(peers)),
            "group both all w0 w1",
            "quorum both",
        ]
    )
    sizes: dict[str, int] = {}
    for size in (5, 11, 11, 30):
        lines, failures = collect(note(size), peers, sizes, lambda old, size=size: consistency_proof(LEAVES, old, size))
        assert failures == {}
        cosigned = note(size).decode() + "".join(line + "\n" for line in lines.values())
        checkpoint, names = policy.accept(cosigned)
        assert checkpoint.size == size and names == ["w0", "w1"]
    # a log that forgot what it told the witnesses recovers from their 409s
    lines, failures = collect(note(34), peers, {}, lambda old: consistency_proof(LEAVES, old, 34))
    assert failures == {} and len(lines) == 2
    # the operator rewrites decision 4 and signs a bigger tree: no witness cosigns it
    forked = [*LEAVES[:4], b"rewritten", *LEAVES[5:]]
    lines, failures = collect(note(36, forked), peers, dict(sizes), lambda old: consistency_proof(forked, old, 36))
    assert lines == {} and set(failures) == {peer.key.name for peer in peers}
    with pytest.raises(QuorumMissing, match="lacks the quorum"):
        policy.accept(note(36, forked))


def test_policy_mistakes_name_the_line() -> None:
    w = CosignerSigner.generate("w.example").verifier().encode()
    cases = {
        "quorum none": "no log line",
        f"log {LOG_VERIFIER}": "no quorum line",
        f"log {LOG_VERIFIER}\ngroup g 2 a b\nquorum g": "line 2",
        f"log {LOG_VERIFIER}\nwitness a {w}\ngroup g 3 a\nquorum g": "threshold",
        f"log {LOG_VERIFIER}\nwitness a {LOG_VERIFIER}\nquorum a": "line 2",
        f"log {LOG_VERIFIER}\nquorum nobody": "not defined",
        f"log {LOG_VERIFIER}\nfrobnicate\nquorum none": "line 2",
    }
    for text, message in cases.items():
        with pytest.raises(PolicyError, match=message):
            parse_policy(text.splitlines(), "p.txt")
