"""A fault-injecting HTTP proxy for the S3 test server: boto3 talks to it, it talks to the real server.

Each request is read whole from the client, then either forwarded (on a fresh connection to the server)
or failed, as the injected `Fault`s say.  The kinds are the ways S3 and the network fail in practice:

    drop          close the connection without a reply (the request never reaches the server)
    500, 503      answer InternalError or SlowDown with S3's XML error body
    stall         say nothing for `stall_seconds` (longer than the client's read timeout), then close
    truncate      forward, then send the reply's head with its full Content-Length and half its body, close
    stall_body    forward, send the head and half the body, then say nothing for `stall_seconds`, close
    cut_request   read half the request body (an upload) and close; the server never sees the request
    short         forward, then send half the reply's body with a Content-Length that says so: data lost
                  by something that did not notice (only a check of the size or checksum can tell)
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

KINDS = ("drop", "500", "503", "stall", "truncate", "stall_body", "cut_request", "short")
ERRORS = {"500": (b"500 Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
          "503": (b"503 Slow Down", "SlowDown", "Please reduce your request rate.")}


@dataclass
class Fault:
    """Fail the matching requests: after letting `skip` of them through, the next `times` (None: all of them)."""

    kind: str
    method: str | None = None  # HTTP method to match (None: any)
    contains: str = ""  # substring of the request target (path and query) to match, e.g. "partNumber=2"
    skip: int = 0
    times: int | None = 1
    when: Callable[[dict[str, str]], bool] | None = None  # a test of the request's headers (lower-case names)
    seen: int = field(default=0, init=False)  # matching requests so far
    hits: int = field(default=0, init=False)  # of which failed

    def __post_init__(self):
        assert self.kind in KINDS, self.kind

    def take(self, method: str, target: str, headers: dict[str, str]) -> bool:
        """Count a request; whether this fault fails it."""
        if (self.method is not None and method != self.method) or self.contains not in target:
            return False
        if self.when is not None and not self.when(headers):
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.hits >= self.times):
            return False
        self.hits += 1
        return True


class FaultProxy:
    """A threaded proxy on 127.0.0.1 in front of `upstream` (`http://host:port`); `url` is its endpoint."""

    def __init__(self, upstream: str, stall_seconds: float = 3.0):
        host, port = upstream.removeprefix("http://").rstrip("/").split(":")
        self.upstream = (host, int(port))
        self.stall_seconds = stall_seconds
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                proxy._serve(self.connection, self.rfile)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=True)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, kind: str, method: str | None = None, contains: str = "", skip: int = 0,
               times: int | None = 1, when: Callable[[dict[str, str]], bool] | None = None) -> Fault:
        fault = Fault(kind, method, contains, skip, times, when)
        with self._lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        with self._lock:
            self.faults.clear()

    def _pick(self, method: str, target: str, headers: dict[str, str]) -> str | None:
        with self._lock:
            return next((fault.kind for fault in self.faults if fault.take(method, target, headers)), None)

    def _serve(self, client: socket.socket, reader: BinaryIO) -> None:
        """Answer the requests of one client connection, one after another (keep-alive), until a fault closes it."""
        try:
            while True:
                head = _read_head(reader)
                if head is None:
                    return
                method, target = head.split(b" ", 2)[:2]
                method, target = method.decode(), target.decode()
                headers = _headers(head)
                kind = self._pick(method, target, headers)
                if headers.get("expect", "").lower() == "100-continue":  # boto3 waits for this before a body
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    head = _without_header(head, b"expect")
                length = int(headers.get("content-length", 0))
                if kind == "cut_request":
                    reader.read(length // 2)
                    return
                body = reader.read(length)
                if kind == "drop":
                    return
                if kind == "stall":
                    time.sleep(self.stall_seconds)
                    return
                if kind in ERRORS:
                    client.sendall(_error_reply(kind, target))
                    continue
                reply_head, reply_body = self._forward(head, body)
                if kind in ("truncate", "stall_body"):
                    client.sendall(reply_head + reply_body[:len(reply_body) // 2])
                    if kind == "stall_body":
                        time.sleep(self.stall_seconds)
                    return
                if kind == "short":
                    reply_body = reply_body[:len(reply_body) // 2]
                    reply_head = _without_header(reply_head, b"content-length")
                    reply_head = reply_head[:-2] + f"Content-Length: {len(reply_body)}\r\n\r\n".encode()
                client.sendall(reply_head + reply_body)
        except OSError:  # the client gave up (its read timeout) while we stalled or wrote
            return

    def _forward(self, head: bytes, body: bytes) -> tuple[bytes, bytes]:
        """Send one request to the server on a fresh connection; its reply's head (keep-alive) and body."""
        head = _without_header(head, b"connection")
        head = head[:-2] + b"Connection: close\r\n\r\n"
        with socket.create_connection(self.upstream, timeout=30) as upstream:
            upstream.sendall(head + body)
            reply = upstream.makefile("rb")
            reply_head = _read_head(reply)
            reply_body = reply.read()  # until the server closes: works for HEAD and for every framing
        reply_head = _without_header(reply_head, b"connection")
        if not any(name in _headers(reply_head) for name in ("content-length", "transfer-encoding")):
            reply_head = reply_head[:-2] + f"Content-Length: {len(reply_body)}\r\n\r\n".encode()
        return reply_head, reply_body


def _read_head(reader: BinaryIO) -> bytes | None:
    """The request or status line and headers, through the blank line; None at the end of the stream."""
    lines = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n") and len(lines) > 1:
            return b"".join(lines)


def _headers(head: bytes) -> dict[str, str]:
    fields = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name:
            fields[name.strip().lower()] = value.strip()
    return fields


def _without_header(head: bytes, name: bytes) -> bytes:
    lines = head.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.lower().startswith(name + b":"))


def _error_reply(kind: str, target: str) -> bytes:
    status, code, message = ERRORS[kind]
    resource = target.split("?")[0]
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<Resource>{resource}</Resource><RequestId>fault-proxy</RequestId></Error>").encode()
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/xml\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
