"""C2SP tlog-tiles: paths, the tiles and entry bundles a log writes, and reading a tree back from
tiles — checked against two logs published by implementations no one here wrote (read from
``../shared/vectors/tlog-tiles``, never copied here; skipped when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.checkpoints import open_note, parse_checkpoint, sign
from ledger.merkle import leaf_hash, node_hash, root_hash
from ledger.tiles import (
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    Tile,
    TileError,
    TileReader,
    bundle,
    new_bundles,
    new_tiles,
    tile_at,
    tile_hashes,
    tile_path,
    unbundle,
)

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "tlog-tiles"
TESSERA = VECTORS / "tessera-log"
SUNLIGHT = VECTORS / "sunlight-mirror"
TESSERA_WORDS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eit",
    "nain",
    "ten",
    "ileven",
    "twelf",
    "threeten",
    "fourten",
    "fivten",
]
TESSERA_SIGNER = "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg"
TESSERA_VERIFIER = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"

needs_vectors = pytest.mark.skipif(not VECTORS.is_dir(), reason=f"tlog-tiles vectors not found at {VECTORS}")


class Nodes:
    """Every perfect subtree of a list of leaves, by (height, index): a node store for the writer."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.levels = [[leaf_hash(e) for e in leaves]]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def __call__(self, height: int, index: int) -> bytes:
        return self.levels[height][index]


def write(leaves: list[bytes], files: dict[str, bytes], old_size: int = 0) -> None:
    """What a publisher writes when its log grows from ``old_size`` to ``len(leaves)``."""
    nodes = Nodes(leaves)
    for tile in new_tiles(old_size, len(leaves)):
        files[tile.path] = tile_hashes(nodes, tile)
    for b in new_bundles(old_size, len(leaves)):
        start = b.index * TILE_WIDTH
        files[b.path] = bundle(leaves[start : start + b.width])


def test_paths_follow_the_spec() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 0, 1) == "tile/1/000.p/1"
    assert tile_path("entries", 5, 200) == "tile/entries/005.p/200"
    assert tile_path(2, 999) == "tile/2/999"
    assert tile_path(0, 1000) == "tile/0/x001/000"
    with pytest.raises(TileError):
        tile_path(0, 0, 0)


def test_the_tiles_of_a_tree() -> None:
    assert list(new_tiles(0, 0)) == []
    assert list(new_tiles(0, 300)) == [Tile(0, 0, 256), Tile(0, 1, 44), Tile(1, 0, 1)]
    # growing from 300 to 600 rewrites the partial tiles only, never tile/0/000
    assert list(new_tiles(300, 600)) == [Tile(0, 1, 256), Tile(0, 2, 88), Tile(1, 0, 2)]
    assert list(new_tiles(512, 512)) == []
    assert tile_at(1, 0, 70_000) == Tile(1, 0, 256)
    with pytest.raises(TileError):
        list(new_tiles(5, 4))


@given(steps=st.lists(st.integers(0, 700), min_size=1, max_size=6))
def test_publishing_step_by_step_writes_what_publishing_once_writes(steps: list[int]) -> None:
    sizes = sorted(set(steps))
    leaves = [f"record {i}".encode() for i in range(sizes[-1])]
    once: dict[str, bytes] = {}
    write(leaves, once)
    stepwise: dict[str, bytes] = {}
    old = 0
    for size in sizes:
        before = dict(stepwise)
        write(leaves[:size], stepwise, old)
        # a full tile, once written, is never written again
        for path, data in before.items():
            if ".p/" not in path:
                assert stepwise[path] == data
        old = size
    assert {p: d for p, d in stepwise.items() if p in once} == once
    reader = TileReader(stepwise.__getitem__, sizes[-1])
    assert reader.root() == root_hash(leaves)


def test_a_tree_with_three_tile_levels_reads_back() -> None:
    leaves = [i.to_bytes(4, "big") for i in range(TILE_WIDTH * TILE_WIDTH + 3)]
    files: dict[str, bytes] = {}
    write(leaves, files)
    assert "tile/2/000.p/1" in files
    reader = TileReader(files.__getitem__, len(leaves))
    assert reader.root() == root_hash(leaves)
    assert reader.entries(256) == leaves[256 * 256 :]


def test_bundles_round_trip_and_refuse_what_does_not_fit() -> None:
    entries = [b"", b"a", bytes(MAX_ENTRY_SIZE)]
    assert unbundle(bundle(entries), 3) == entries
    with pytest.raises(TileError, match="does not fit"):
        bundle([bytes(MAX_ENTRY_SIZE + 1)])
    with pytest.raises(TileError):
        unbundle(bundle(entries) + b"x", 3)
    with pytest.raises(TileError):
        unbundle(bundle(entries)[:-1], 3)


def test_a_tile_of_the_wrong_width_or_a_wrong_entry_is_refused() -> None:
    leaves = [b"a", b"b", b"c"]
    files: dict[str, bytes] = {}
    write(leaves, files)
    files["tile/0/000.p/3"] = files["tile/0/000.p/3"][:-1]
    with pytest.raises(TileError, match="not 3 hashes"):
        TileReader(files.__getitem__, 3).root()
    write(leaves, files)
    files["tile/entries/000.p/3"] = bundle([b"a", b"b", b"x"])
    with pytest.raises(TileError, match="entry 2"):
        TileReader(files.__getitem__, 3).entries(0)


@needs_vectors
@pytest.mark.parametrize("size", range(1, 16))
def test_the_writer_reproduces_tesseras_log_byte_for_byte(size: int) -> None:
    leaves = [w.encode() for w in TESSERA_WORDS[:size]]
    files: dict[str, bytes] = {}
    write(leaves, files)
    assert files == {
        f"tile/0/000.p/{size}": (TESSERA / "tile" / "0" / "000.p" / str(size)).read_bytes(),
        f"tile/entries/000.p/{size}": (TESSERA / "tile" / "entries" / "000.p" / str(size)).read_bytes(),
    }
    published = (TESSERA / f"checkpoint.{size}").read_bytes()
    checkpoint, _ = open_note(published, [TESSERA_VERIFIER])
    assert checkpoint.size == size
    assert checkpoint.root == TileReader(files.__getitem__, size).root()
    # Ed25519 is deterministic: the same body and key give the same signed note
    assert sign(checkpoint.body(), TESSERA_SIGNER).encode() == published


@needs_vectors
def test_the_reader_checks_sunlights_tiles_against_its_checkpoint() -> None:
    body = (SUNLIGHT / "checkpoint").read_bytes().split(b"\n\n")[0] + b"\n"
    checkpoint = parse_checkpoint(body)
    reader = TileReader(lambda path: (SUNLIGHT / path).read_bytes(), checkpoint.size)
    assert reader.root() == checkpoint.root
    leaves = [f"record {i}".encode() for i in range(checkpoint.size)]
    assert reader.root() == root_hash(leaves)
    assert all(reader.node(0, i) == leaf_hash(leaves[i]) for i in range(checkpoint.size))
