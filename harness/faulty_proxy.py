"""A loopback TCP proxy in front of the local S3 server whose faults a test switches at run time.

    with FaultyProxy(endpoint) as proxy:        # proxy.endpoint: "http://127.0.0.1:PORT"
        proxy.cut_upstream_after = 20_000       # each connection dies after 20 kB sent to S3
        proxy.refuse = True                     # new connections are reset at once
        proxy.delay = 0.05                      # seconds before each chunk to S3 is forwarded

A cut or refused connection is reset (RST), as a dropped link or a rejecting firewall looks to
the client; bytes already forwarded stay forwarded, so the server sees a request cut mid-body.
The delay applies to what goes to the server (a slow uplink); answers come back at full speed.
"""

import contextlib
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

CHUNK = 16 * 1024


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN: the peer sees "connection reset", not a clean end."""
    with contextlib.suppress(OSError):  # already closed by the other direction
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultyProxy:
    """Forwards 127.0.0.1:<a free port> to `upstream` ("http://host:port"), one thread per direction."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.upstream_url = upstream
        self.cut_upstream_after: int | None = None
        self.cut_downstream_after: int | None = None
        self.refuse = False
        self.delay = 0.0
        self.sent_upstream = 0  # bytes forwarded to the server, all connections together
        self.first_sent = self.last_sent = None  # when (time.monotonic()) the first and last of them went
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()

    def clear(self) -> None:
        """No more faults (connections already cut stay cut)."""
        self.cut_upstream_after = self.cut_downstream_after = None
        self.refuse, self.delay = False, 0.0

    def __enter__(self) -> "FaultyProxy":
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._listener.close()
        with self._lock:
            for sock in list(self._open):
                _reset(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            if self.refuse:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open.update((client, server))
            pair = [client, server, 2]  # the sockets, and how many directions are still open
            threading.Thread(target=self._pipe, args=(client, server, pair, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, pair, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, pair: list, upstream: bool) -> None:
        forwarded = 0
        try:
            while data := source.recv(CHUNK):
                if upstream and self.delay:
                    time.sleep(self.delay)
                limit = self.cut_upstream_after if upstream else self.cut_downstream_after
                if limit is not None and forwarded + len(data) > limit:
                    target.sendall(data[: max(limit - forwarded, 0)])
                    self._count(upstream, max(limit - forwarded, 0))
                    break
                target.sendall(data)
                forwarded += len(data)
                self._count(upstream, len(data))
            else:
                target.shutdown(socket.SHUT_WR)  # a clean end is passed on as one
                with self._lock:
                    pair[2] -= 1
                    if pair[2]:
                        return
                    for sock in pair[:2]:
                        self._open.discard(sock)
                        sock.close()
                return
        except OSError:
            pass
        with self._lock:  # cut: both sides of the connection are reset
            for sock in pair[:2]:
                self._open.discard(sock)
                _reset(sock)

    def _count(self, upstream: bool, size: int) -> None:
        if upstream:
            with self._lock:
                self.sent_upstream += size
                self.last_sent = time.monotonic()
                self.first_sent = self.first_sent or self.last_sent
