"""A small HTTP/1.1 keep-alive client for the Bot API's JSON POSTs (sendMessage, answerCallbackQuery,
getUpdates): the runners' and the outbox sender's hot path.

Why not aiohttp here: every reply is one POST, and aiohttp's general-purpose request machinery (its
request and response objects, tracing hooks, cookie jar, timer context, payload classes, stream reader)
cost about as much CPU in the bot process as everything the runner itself does per update
(bench/e2e_bench.py, py-spy). A Bot API call needs none of that: one POST with a JSON body on a kept-alive
connection, one answer with a Content-Length (or chunked) body. aiohttp stays for the rest (multipart
uploads, file downloads, the webhook server).

What it must keep, and how:
- The delivery guarantees rest on telling "not sent" from "maybe sent" (bot/scheduler/README.md,
  "Unknown outcomes"). `RequestNotSent`: no byte of the request reached the network — the connection
  could not be opened (refused, DNS, TLS handshake or certificate, connect timeout) or no connection came
  free in time. `ResponseLost`: the request was handed to the socket and no
  complete, well-formed answer came back (connection dropped or reset, a partial or malformed answer,
  the timeout): the server may have acted on it.
- A kept-alive connection the server has closed is noticed by the event loop (EOF, reset) and never
  reused; the request then goes out on another or a new connection, which is safe because nothing was
  written. A request is never written twice: once written, any failure is `ResponseLost`, never a retry.
  Idle connections are dropped after `keepalive_s` (shorter than servers' own keep-alive timeouts, like
  aiohttp's 15 s), so the server rarely closes one in the instant it is reused.
- Answers: status line and headers, then a body delimited by Content-Length, chunked transfer coding or
  the closing of the connection (HTTP/1.0 style); 1xx interim answers are skipped. The body is returned
  as bytes (the caller decodes the JSON: an HTML error page from a proxy is the caller's to classify).
- https:// goes through asyncio's TLS with the system's trust store (or the given SSLContext) and the
  host name checked. The URL (it holds the bot token) is never put in an error message.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import quote, urlsplit

__all__ = ["BotApiHttp", "RequestNotSent", "ResponseLost"]

MAX_HEAD = 64 * 1024  # bytes of status line and headers
MAX_BODY = 64 * 1024 * 1024  # a getUpdates answer holds at most 100 updates; far below this
_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"connection"))


class RequestNotSent(Exception):
    """Nothing of the request reached the server: it can safely be tried again."""


class ResponseLost(Exception):
    """The request went out (or may have) and no complete answer came back: the server may have acted on it."""


class BadResponse(Exception):
    """Not a well-formed HTTP/1.x answer."""


class ResponseParser:
    """Incremental parser of one HTTP/1.x response (fed the connection's bytes as they arrive).

    `feed(data)` returns (status, body, reusable) once the answer is complete, else None; `eof()` the same
    when the server closes its side (completing a body delimited by the close), raising BadResponse if the
    answer was cut short. `reusable` is False when the connection must not carry another request (the
    server said `Connection: close`, HTTP/1.0 without keep-alive, a close-delimited body, bytes beyond
    the answer)."""

    __slots__ = ("_buf", "_chunks", "_keep", "_length", "_mode", "_pos", "_status")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._status = 0  # 0: still reading the head
        self._keep = False
        self._mode = ""  # "length", "chunked" or "close"
        self._length = 0
        self._pos = 0  # chunked: where the next chunk-size line starts
        self._chunks: list[bytes] = []

    def feed(self, data: bytes) -> tuple[int, bytes, bool] | None:
        self._buf += data
        if not self._status and not self._head():
            return None
        if self._mode == "length":
            if len(self._buf) < self._length:
                return None
            body = bytes(self._buf[: self._length])
            return self._status, body, self._keep and len(self._buf) == self._length
        if self._mode == "chunked":
            return self._chunked()
        if len(self._buf) > MAX_BODY:
            raise BadResponse("answer too large")
        return None  # "close": complete only at EOF

    def eof(self) -> tuple[int, bytes, bool]:
        if self._status and self._mode == "close":
            return self._status, bytes(self._buf), False
        raise BadResponse("connection closed before the whole answer arrived")

    def _head(self) -> bool:
        """Parse the status line and headers once they are all here (skipping 1xx answers)."""
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise BadResponse("answer head too large")
                return False
            head = bytes(self._buf[:end])
            del self._buf[: end + 4]
            status_line, _, fields = head.partition(b"\r\n")
            version, _, rest = status_line.partition(b" ")
            code = rest[:3]
            if not version.startswith(b"HTTP/1.") or not code.isdigit() or rest[3:4] not in (b"", b" "):
                raise BadResponse("not an HTTP/1.x status line")
            status = int(code)
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            headers: dict[bytes, str] = {}  # only the ones that frame the answer
            for line in fields.split(b"\r\n") if fields else ():
                name, sep, value = line.partition(b":")
                name = name.strip().lower()
                if not sep or not name:
                    raise BadResponse("malformed header line")
                if name not in _FRAMING:
                    continue
                text = value.strip().decode("latin-1")
                if name in headers:
                    if name == b"connection":
                        text = f"{headers[name]},{text}"
                    elif name == b"transfer-encoding" or headers[name] != text:
                        raise BadResponse(f"repeated {name.decode()}")
                headers[name] = text
            connection = {t.strip().lower() for t in headers.get(b"connection", "").split(",")}
            keep = "close" not in connection if version == b"HTTP/1.1" else "keep-alive" in connection
            te = headers.get(b"transfer-encoding")
            if status in (204, 304):
                self._mode, self._length = "length", 0
            elif te is not None:
                if te.lower().rsplit(",", 1)[-1].strip() != "chunked":
                    raise BadResponse("unsupported transfer coding")
                self._mode = "chunked"
                keep = keep and b"content-length" not in headers  # both: a smuggling pattern, never reused
            elif (cl := headers.get(b"content-length")) is not None:
                if not cl.isdigit() or int(cl) > MAX_BODY:
                    raise BadResponse("bad Content-Length")
                self._mode, self._length = "length", int(cl)
            else:
                self._mode, keep = "close", False
            self._status, self._keep = status, keep
            return True

    def _chunked(self) -> tuple[int, bytes, bool] | None:
        buf = self._buf
        while True:
            nl = buf.find(b"\r\n", self._pos)
            if nl < 0:
                if len(buf) - self._pos > 4096:
                    raise BadResponse("chunk size line too long")
                return None
            size_text = bytes(buf[self._pos:nl]).split(b";", 1)[0].strip()
            if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                raise BadResponse("bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", nl)  # the trailer section (usually empty) ends the body
                if end < 0:
                    return None
                rest = len(buf) - (end + 4)
                return self._status, b"".join(self._chunks), self._keep and rest == 0
            start = nl + 2
            if len(buf) < start + size + 2:
                if start + size > MAX_BODY:
                    raise BadResponse("answer too large")
                return None
            if buf[start + size:start + size + 2] != b"\r\n":
                raise BadResponse("chunk not followed by CRLF")
            self._chunks.append(bytes(buf[start:start + size]))
            self._pos = start + size + 2


class _Connection(asyncio.Protocol):
    """One kept-alive connection: carries one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self._parser = ResponseParser()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        """Write one request; the future gets (status, body, reusable) or ResponseLost."""
        assert self.transport is not None and self._waiter is None
        self._waiter = self.loop.create_future()
        self._parser = ResponseParser()
        self.transport.write(data)
        return self._waiter

    def done(self) -> None:
        self._waiter = None

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.abort()  # bytes nobody asked for: this connection's framing cannot be trusted any more
            return
        try:
            answer = self._parser.feed(data)
        except BadResponse as e:
            waiter.set_exception(ResponseLost(f"malformed answer: {e}"))
            self.abort()
            return
        if answer is not None:
            waiter.set_result(answer)

    def eof_received(self) -> bool:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            try:
                waiter.set_result(self._parser.eof())
            except BadResponse as e:
                waiter.set_exception(ResponseLost(str(e)))
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            why = f"{type(exc).__name__}: {exc}" if exc is not None else "closed by the server"
            waiter.set_exception(ResponseLost(f"connection lost before the whole answer arrived ({why})"))

    def time_out(self, seconds: float) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ResponseLost(f"no complete answer within {seconds:g} s"))
        self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class BotApiHttp:
    """POSTs JSON bodies to `<base_url><method>` over a pool of kept-alive HTTP/1.1 connections.

    `base_url`: "https://api.telegram.org/bot<token>/" (or a self-hosted server's, or a test fake's).
    `timeout`: seconds for a whole call (waiting for a free connection, connecting, the answer);
    `limit`: connections open at most (more calls wait for one to come free)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, connect_timeout: float = 10.0, limit: int = 100,
                 keepalive_s: float = 15.0, ssl_context: ssl.SSLContext | None = None) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("the Bot API URL must be http:// or https:// with a host")
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context()
        host = f"[{self._host}]" if ":" in self._host else self._host
        if url.port is not None:
            host = f"{host}:{url.port}"
        self._path = quote(url.path or "/", safe="/:@!$&'()*+,;=-._~%")
        self._host_header = host
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.keepalive_s = keepalive_s
        self._limit = limit
        self._heads: dict[str, bytes] = {}
        self._idle: deque[_Connection] = deque()
        self._busy: set[_Connection] = set()
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _head(self, method: str) -> bytes:
        """The request's bytes up to the Content-Length value, built once per method."""
        head = self._heads.get(method)
        if head is None:
            if not method.isascii() or not method.isalnum():
                raise ValueError(f"not a Bot API method name: {method!r}")
            head = (f"POST {self._path}{method} HTTP/1.1\r\nHost: {self._host_header}\r\nUser-Agent: bangfu\r\n"
                    "Content-Type: application/json\r\nContent-Length: ").encode("ascii")
            self._heads[method] = head
        return head

    async def post(self, method: str, body: bytes, time_limit: float | None = None) -> tuple[int, bytes]:
        """POST `body` (JSON) to the method; returns the answer's status and body. `time_limit`: seconds for
        this call instead of `timeout` (a long poll). Raises RequestNotSent (safe to try again) or ResponseLost
        (the outcome is unknown)."""
        seconds = self.timeout if time_limit is None else time_limit
        data = b"".join((self._head(method), str(len(body)).encode(), b"\r\n\r\n", body))
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        assert self._slots is not None
        deadline = loop.time() + seconds
        if self._slots.locked():  # every connection busy: wait for one, within the call's time
            try:
                await asyncio.wait_for(self._slots.acquire(), seconds)
            except TimeoutError:
                raise RequestNotSent(f"no connection came free within {seconds:g} s") from None
        else:
            await self._slots.acquire()
        try:
            conn = await self._connection(deadline)
            return await self._exchange(conn, data, deadline - loop.time(), seconds)
        finally:
            self._slots.release()

    async def _connection(self, deadline: float) -> _Connection:
        """An idle connection still open (the most recently used first), else a new one."""
        loop = self._loop
        assert loop is not None
        now = loop.time()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable() and now - conn.idle_since < self.keepalive_s:
                return conn
            conn.close()
        wait = min(self.connect_timeout, deadline - now)
        try:
            async with asyncio.timeout(wait):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._ssl else None)
        except TimeoutError:
            raise RequestNotSent(f"could not connect within {wait:g} s") from None
        except OSError as e:  # refused, unreachable, DNS, TLS handshake and certificate errors
            raise RequestNotSent(f"could not connect: {type(e).__name__}: {e}") from e
        return conn

    async def _exchange(self, conn: _Connection, data: bytes, left: float, seconds: float) -> tuple[int, bytes]:
        """Write the request on `conn` and wait (`left` seconds of the call's `seconds`) for its answer."""
        assert self._loop is not None
        if left <= 0:  # the time went waiting for a connection: nothing written, the connection stays good
            conn.idle_since = self._loop.time()
            self._idle.append(conn)
            raise RequestNotSent("timed out before the request was sent")
        self._busy.add(conn)
        answer = conn.request(data)
        timer = self._loop.call_later(left, conn.time_out, seconds)
        try:
            status, body, reusable = await answer
        except BaseException:
            conn.abort()  # failed, timed out or cancelled mid-answer: the connection's state is unknown
            raise
        finally:
            timer.cancel()
            conn.done()
            self._busy.discard(conn)
        if reusable and conn.usable():
            conn.idle_since = self._loop.time()
            self._idle.append(conn)
        else:
            conn.close()
        return status, body

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """First use, or a new event loop (tests): connections of another loop are forgotten."""
        for conn in (*self._idle, *self._busy):
            conn.closed = True
        self._idle.clear()
        self._busy.clear()
        self._loop = loop
        self._slots = asyncio.Semaphore(self._limit)

    async def close(self) -> None:
        """Close every connection (a call still in progress ends with ResponseLost); the client stays usable
        and opens new connections when called again."""
        if self._loop is asyncio.get_running_loop():
            while self._idle:
                self._idle.pop().close()
            for conn in list(self._busy):
                conn.abort()
            await asyncio.sleep(0)  # let the transports finish closing
        self._idle.clear()
