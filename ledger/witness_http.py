"""The witness protocol over HTTP: a small server for ``ledger witness serve`` and the client a log
uses to collect cosignatures from several witnesses at once.

The standard library's threading HTTP server is enough for a witness (one short POST per checkpoint
per log) and keeps it free of optional web dependencies; the state it guards is in SQLite.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ledger.checkpoints import parse_checkpoint
from ledger.cosignature import CosignerKey, note_parts
from ledger.errors import LedgerError
from ledger.witness import MAX_BODY, Submission, Witness, WitnessRefusal

SIZE_TYPE = "text/x.tlog.size"


def make_server(witness: Witness, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server answering ``POST /add-checkpoint`` for ``witness`` (call ``serve_forever``)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "medtech-ledger-witness"

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/add-checkpoint":
                self._reply(404, "no such endpoint; POST /add-checkpoint\n")
                return
            length = int(self.headers.get("Content-Length") or -1)
            if not 0 <= length <= MAX_BODY:
                self._reply(400 if length < 0 else 413, "a Content-Length up to 64 KiB is required\n")
                return
            try:
                lines = witness.add_checkpoint(self.rfile.read(length))
            except WitnessRefusal as refusal:
                if refusal.status == 409 and refusal.size is not None:
                    self._reply(409, f"{refusal.size}\n", SIZE_TYPE)
                else:
                    self._reply(refusal.status, f"{refusal}\n")
                return
            self._reply(200, lines)

        def _reply(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI reports what matters
            return

    return ThreadingHTTPServer((host, port), Handler)


@dataclass(frozen=True)
class WitnessPeer:
    """A witness a log asks for cosignatures: its key and the URL prefix of ``add-checkpoint``."""

    key: CosignerKey
    url: str


def submit(url: str, submission: Submission, timeout: float) -> tuple[int, bytes]:
    """POST one submission; the status and body, whatever the status."""
    request = urllib.request.Request(url.rstrip("/") + "/add-checkpoint", data=submission.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def cosign_with(
    note: bytes,
    peer: WitnessPeer,
    old_size: int,
    proof_from: Callable[[int], Sequence[bytes]],
    timeout: float,
) -> tuple[str, int]:
    """One witness's verified cosignature line on ``note`` and the size it now holds.

    Starts from ``old_size`` (the witness's last size as this log knows it); on 409 it retries once
    from the size the witness reports, with ``proof_from(size)`` as the consistency proof.
    """
    signed = note_parts(note)[0]
    size = parse_checkpoint(signed).size
    for _ in range(2):
        proof = tuple(proof_from(old_size)) if 0 < old_size < size else ()
        status, body = submit(peer.url, Submission(old_size, proof, note), timeout)
        if status == 409 and body.strip().isdigit() and int(body) != old_size:
            old_size = int(body)
            continue
        if status != 200:
            text = body.decode("utf-8", "replace").strip()
            raise LedgerError(f"witness {peer.key.name} refused the checkpoint ({status}): {text}")
        # A line of this witness's key that does not verify raises (SignatureError); others are skipped.
        lines = body.decode("utf-8", "replace").split("\n")
        line = next((line for line in lines if peer.key.verify(signed, line) is not None), None)
        if line is None:
            raise LedgerError(f"witness {peer.key.name} answered without a valid cosignature")
        return line, size
    raise LedgerError(f"witness {peer.key.name} keeps reporting another size")


def collect(
    note: bytes,
    peers: Sequence[WitnessPeer],
    last_sizes: dict[str, int],
    proof_from: Callable[[int], Sequence[bytes]],
    timeout: float = 10.0,
) -> tuple[dict[str, str], dict[str, str]]:
    """Ask every witness in parallel: (name -> cosignature line, name -> why it failed)."""
    lines: dict[str, str] = {}
    failures: dict[str, str] = {}
    if not peers:
        return lines, failures
    with ThreadPoolExecutor(max_workers=len(peers)) as pool:
        futures = {
            peer.key.name: pool.submit(cosign_with, note, peer, last_sizes.get(peer.key.name, 0), proof_from, timeout)
            for peer in peers
        }
        for name, future in futures.items():
            try:
                lines[name], last_sizes[name] = future.result()
            except (LedgerError, OSError) as exc:
                failures[name] = str(exc)
    return lines, failures
