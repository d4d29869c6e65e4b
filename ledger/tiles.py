"""The Merkle log as static files: C2SP tlog-tiles (https://c2sp.org/tlog-tiles).

A tile holds up to 256 consecutive hashes of one level of the tree: tile level ``L`` holds the roots
of the perfect subtrees of ``2**(8 L)`` leaves, so level 0 holds the leaf hashes. Only complete
subtrees are ever in a tile; the right edge of a tree whose size is not a multiple of 256 at some
level is a *partial* tile ``<N>.p/<W>`` of width ``W``. Entry bundles ``tile/entries/<N>`` hold the
leaves themselves, each as a big-endian uint16 length and its bytes.

Why tiles: they are immutable once full, so any web server or cache can serve the log, and a reader
checks a checkpoint's root from the tiles with O(log n) fetches, needing nothing from the writer but
the files (the Go sumdb and transparency-dev/tessera serve their logs the same way).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

from ledger.errors import LedgerError
from ledger.merkle import HASH_SIZE, GetNode, leaf_hash, leaf_hashes, node_hash, root_from

TILE_HEIGHT = 8
"""tlog-tiles fixes the height: each tile spans 8 levels of the tree."""
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY_SIZE = 0xFFFF
"""An entry bundle prefixes each entry with a uint16 length, so no entry may be longer."""
_SIZE = struct.Struct(">H")
"""An entry's length before it in a bundle (big-endian uint16)."""


class TileError(LedgerError):
    """A tile, an entry bundle or a tile path is malformed or does not match the tree."""


@dataclass(frozen=True, slots=True)
class Tile:
    """Tile ``index`` of ``level`` (``"entries"`` for an entry bundle), ``width`` hashes or entries."""

    level: int | str
    index: int
    width: int

    @property
    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]``, ``N`` in three-digit groups, all but the last prefixed ``x``."""
        return tile_path(self.level, self.index, self.width)


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """The path of a tile, e.g. ``tile_path(0, 1234067) == "tile/0/x001/x234/067"``."""
    if index < 0 or not 1 <= width <= TILE_WIDTH:
        raise TileError(f"no tile {level}/{index} of width {width}")
    groups: list[int] = []
    n = index
    while True:
        n, group = divmod(n, 1000)
        groups.append(group)
        if n == 0:
            break
    groups.reverse()
    parts = [f"x{g:03d}" for g in groups[:-1]] + [f"{groups[-1]:03d}"]
    path = f"tile/{level}/{'/'.join(parts)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def tile_at(level: int, index: int, size: int) -> Tile:
    """Tile ``index`` of ``level`` as it is in a tree of ``size`` leaves (full or partial)."""
    count = size >> (TILE_HEIGHT * level)
    width = min(TILE_WIDTH, count - index * TILE_WIDTH)
    if width <= 0:
        raise TileError(f"a tree of {size} leaves has no tile {index} at level {level}")
    return Tile(level, index, width)


def new_tiles(old_size: int, new_size: int) -> Iterator[Tile]:
    """The hash tiles a tree of ``new_size`` has that one of ``old_size`` has not, lowest level first.

    Full tiles of the old tree are never among them: once full, a tile never changes.
    """
    if not 0 <= old_size <= new_size:
        raise TileError(f"a log does not shrink: {old_size} -> {new_size}")
    level = 0
    while (count := new_size >> (TILE_HEIGHT * level)) > 0:
        old_count = old_size >> (TILE_HEIGHT * level)
        if count > old_count:
            for index in range(old_count // TILE_WIDTH, -(-count // TILE_WIDTH)):
                yield tile_at(level, index, new_size)
        level += 1


def new_bundles(old_size: int, new_size: int) -> Iterator[Tile]:
    """The entry bundles a log of ``new_size`` has that one of ``old_size`` has not."""
    for tile in new_tiles(old_size, new_size):
        if tile.level != 0:
            break
        yield Tile("entries", tile.index, tile.width)


def tile_hashes(get_node: GetNode, tile: Tile) -> bytes:
    """The bytes of a hash tile: its ``width`` hashes read from a node store, concatenated."""
    if not isinstance(tile.level, int):
        raise TileError(f"{tile.path} is not a hash tile")
    height = TILE_HEIGHT * tile.level
    start = tile.index * TILE_WIDTH
    return b"".join(get_node(height, start + i) for i in range(tile.width))


def bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length, then its bytes."""
    entries = list(entries)
    sizes = list(map(len, entries))
    largest = max(sizes, default=0)
    if largest > MAX_ENTRY_SIZE:
        raise TileError(f"an entry of {largest} bytes does not fit an entry bundle (at most {MAX_ENTRY_SIZE})")
    return b"".join(chain.from_iterable(zip(map(_SIZE.pack, sizes), entries, strict=True)))


def unbundle(data: bytes, width: int) -> list[bytes]:
    """The ``width`` entries of an entry bundle; anything short, long or left over is refused."""
    entries: list[bytes] = []
    pos = 0
    for _ in range(width):
        if pos + 2 > len(data):
            raise TileError(f"entry bundle ends after {len(entries)} of {width} entries")
        n = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + n > len(data):
            raise TileError(f"entry {len(entries)} of the bundle is cut short")
        entries.append(data[pos : pos + n])
        pos += n
    if pos != len(data):
        raise TileError(f"entry bundle has {len(data) - pos} bytes after its {width} entries")
    return entries


Fetch = Callable[[str], bytes]
"""Reads one file of a published log by its path (``checkpoint``, ``tile/0/000`` …)."""


class TileReader:
    """The tree of ``size`` leaves as served in tiles, read through ``fetch`` and checked on the way.

    Each tile is fetched once (cached) and must have exactly its width; nodes at heights that are
    not a multiple of 8 are hashed from the tile below, as RFC 9162 §2.1.1 defines them.
    """

    def __init__(self, fetch: Fetch, size: int) -> None:
        self.fetch = fetch
        self.size = size
        self._tile = lru_cache(maxsize=64)(self._read_tile)

    def _read_tile(self, level: int, index: int) -> bytes:
        tile = tile_at(level, index, self.size)
        data = self.fetch(tile.path)
        if len(data) != tile.width * HASH_SIZE:
            raise TileError(f"{tile.path} holds {len(data)} bytes, not {tile.width} hashes")
        return data

    def node(self, height: int, index: int) -> bytes:
        """The root of the perfect subtree of ``2**height`` leaves at ``index`` (a ``GetNode``)."""
        level, below = divmod(height, TILE_HEIGHT)
        if below:
            return node_hash(self.node(height - 1, 2 * index), self.node(height - 1, 2 * index + 1))
        tile_index, offset = divmod(index, TILE_WIDTH)
        data = self._tile(level, tile_index)
        return data[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]

    def root(self) -> bytes:
        """The tree's root hash from the tiles (compare it with a verified checkpoint's)."""
        return root_from(self.node, self.size)

    def entries(self, index: int) -> list[bytes]:
        """Entry bundle ``index``, each entry checked against its leaf hash in the level-0 tile."""
        width = tile_at(0, index, self.size).width
        entries = unbundle(self.fetch(tile_path("entries", index, width)), width)
        hashes = self._tile(0, index)
        if leaf_hashes(entries) != hashes:  # then find the first that does not, to name it
            for i, entry in enumerate(entries):
                if leaf_hash(entry) != hashes[i * HASH_SIZE : (i + 1) * HASH_SIZE]:
                    where = f"entry {index * TILE_WIDTH + i}"
                    raise TileError(f"{where} does not hash to its leaf in {tile_path(0, index)}")
        return entries
