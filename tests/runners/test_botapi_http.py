"""The runners' own HTTP/1.1 client for Bot API JSON calls (bot/runners/botapi_http.py): its answers parsed
whatever way they are framed and however the bytes arrive, keep-alive, and above all the line the delivery
guarantees rest on — RequestNotSent only when nothing can have reached the server (connection refused,
no free connection in time, a certificate that does not verify), ResponseLost whenever the request went out
(connection dropped before or during the answer, a cut or malformed answer, the timeout) — against
misbehaving local servers, a TLS server with a self-signed certificate, and the fake Bot API."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest

from bot.core.types import OutcomeUnknown, Reply, TransientError
from bot.runners.botapi_http import BadResponse, BotApiHttp, RequestNotSent, ResponseLost, ResponseParser
from bot.runners.http_transport import HttpTransport
from tests.fakebotapi import FakeBotAPI

TOKEN = "123456789:SECRET-token"
OK = b'{"ok":true,"result":{"message_id":7}}'


def answer(body: bytes = OK, *, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
            + extra + b"\r\n" + body)


def chunked(body: bytes, size: int = 5) -> bytes:
    parts = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                     for i in range(0, len(body), size))
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + parts + b"0\r\nX-Trailer: 1\r\n\r\n")


# --------------------------------------------------------------------------- the parser
FRAMINGS = {
    "content-length": (answer(), (200, OK, True)),
    "chunked": (chunked(OK), (200, OK, True)),
    "connection close": (answer(extra=b"Connection: close\r\n"), (200, OK, False)),
    "100 continue first": (b"HTTP/1.1 100 Continue\r\n\r\n" + answer(), (200, OK, True)),
    "two Connection headers": (answer(extra=b"Connection: keep-alive\r\nconnection: close\r\n"), (200, OK, False)),
    "HTTP/1.0": (answer().replace(b"HTTP/1.1", b"HTTP/1.0", 1), (200, OK, False)),
    "HTTP/1.0 keep-alive": (answer(extra=b"Connection: Keep-Alive\r\n").replace(b"HTTP/1.1", b"HTTP/1.0", 1),
                            (200, OK, True)),
    "502 html page": (answer(b"<html>Bad Gateway</html>", status="502 Bad Gateway"),
                      (502, b"<html>Bad Gateway</html>", True)),
    "204 no body": (b"HTTP/1.1 204 No Content\r\n\r\n", (204, b"", True)),
    "chunked and a length": (chunked(OK).replace(b"chunked\r\n", b"chunked\r\nContent-Length: 3\r\n", 1),
                             (200, OK, False)),
}


@pytest.mark.parametrize("name", list(FRAMINGS))
def test_parser_same_answer_however_the_bytes_arrive(name: str) -> None:
    raw, expected = FRAMINGS[name]
    whole = ResponseParser().feed(raw)
    assert whole == expected
    for cut in range(1, len(raw)):  # every split into two reads
        p = ResponseParser()
        first = p.feed(raw[:cut])
        assert first is None or first == expected
        assert (first or p.feed(raw[cut:])) == expected, cut
    p = ResponseParser()
    got = [p.feed(raw[i:i + 1]) for i in range(len(raw))]  # one byte at a time
    assert next(g for g in got if g is not None) == expected


def test_parser_bytes_beyond_the_answer_make_the_connection_unusable() -> None:
    # In the same read; in a later one the connection sees bytes nobody asked for (next test's server).
    assert ResponseParser().feed(answer() + b"HTTP/1.1 200 OK\r\n") == (200, OK, False)
    assert ResponseParser().feed(chunked(OK) + b"X") == (200, OK, False)


def test_parser_body_until_close_and_cut_answers() -> None:
    p = ResponseParser()
    assert p.feed(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + OK[:10]) is None
    assert p.feed(OK[10:]) is None
    assert p.eof() == (200, OK, False)  # no length: the body ends with the connection
    for cut in (answer()[:-3], answer()[:20], chunked(OK)[:-5], b""):
        p = ResponseParser()
        assert p.feed(cut) is None
        with pytest.raises(BadResponse):
            p.eof()


@pytest.mark.parametrize("raw", [
    b"SMTP ready\r\n\r\n",
    b"HTTP/1.1 2x0 OK\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
])
def test_parser_refuses_malformed_answers(raw: bytes) -> None:
    with pytest.raises(BadResponse):
        ResponseParser().feed(raw)


# --------------------------------------------------------------------------- misbehaving servers
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A local TCP server running `handler` per connection; counts connections and requests read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One whole request (head and Content-Length body), or None when the client closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(handler: Callable[[Server, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                  ssl_ctx: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(lambda r, w: handler(server, r, w))
    srv = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=ssl_ctx)
    server.port = srv.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        srv.close()


def client(server: Server, **kw: float) -> BotApiHttp:
    return BotApiHttp(f"http://127.0.0.1:{server.port}/bot{TOKEN}/", **kw)  # type: ignore[arg-type]


async def keep_alive(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await server.read_request(reader) is not None:
        writer.write(answer())
        await writer.drain()


async def test_request_on_the_wire_and_connections_kept_alive() -> None:
    async with serving(keep_alive) as server:
        http = client(server)
        body = orjson.dumps({"chat_id": 42, "text": "你好"})
        for _ in range(5):
            assert await http.post("sendMessage", body) == (200, OK)
        assert server.connections == 1 and len(server.requests) == 5
        head, _, sent = server.requests[0].partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == f"POST /bot{TOKEN}/sendMessage HTTP/1.1".encode()
        assert f"Host: 127.0.0.1:{server.port}".encode() in lines
        assert b"Content-Type: application/json" in lines and f"Content-Length: {len(body)}".encode() in lines
        assert sent == body
        # Concurrent calls each get a connection of their own, then share them.
        got = await asyncio.gather(*(http.post("sendMessage", body) for _ in range(4)))
        assert got == [(200, OK)] * 4 and server.connections == 4
        await asyncio.gather(*(http.post("sendMessage", body) for _ in range(4)))
        assert server.connections == 4
        with pytest.raises(ValueError):
            await http.post("send Message\r\nX-Injected: 1", body)
        await http.close()


async def test_chunked_and_close_delimited_answers_over_the_network() -> None:
    async def mixed(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(chunked(OK, 3))  # chunked, connection kept
        await server.read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n" + OK)  # ended by closing the connection
        await writer.drain()

    async with serving(mixed) as server:
        http = client(server)
        assert await http.post("getMe", b"{}") == (200, OK)
        assert await http.post("getMe", b"{}") == (200, OK)
        assert server.connections == 1
        await http.close()


async def test_connection_refused_is_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once closed
    http = BotApiHttp(f"http://127.0.0.1:{port}/bot{TOKEN}/")
    with pytest.raises(RequestNotSent) as e:
        await http.post("sendMessage", b"{}")
    assert TOKEN not in str(e.value)


@pytest.mark.parametrize("misbehaviour", ["drop after reading", "reset after reading", "partial answer",
                                          "garbage answer", "cut chunked answer"])
async def test_request_out_answer_lost_is_response_lost(misbehaviour: str) -> None:
    async def handler(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        if misbehaviour == "reset after reading":
            writer.transport.abort()
            return
        writer.write({"drop after reading": b"", "partial answer": answer()[:-5],
                      "garbage answer": b"<html>oops</html>\r\n\r\n",
                      "cut chunked answer": chunked(OK)[:-12]}[misbehaviour])
        await writer.drain()

    async with serving(handler) as server:
        http = client(server)
        with pytest.raises(ResponseLost) as e:
            await http.post("sendMessage", b"{}")
        assert TOKEN not in str(e.value)
        assert len(server.requests) == 1  # never written twice
        with pytest.raises(ResponseLost):  # the broken connection was not reused: a new one, same story
            await http.post("sendMessage", b"{}")
        assert server.connections == 2 and len(server.requests) == 2
        await http.close()


async def test_slow_server_times_out_as_response_lost_then_a_fresh_connection() -> None:
    async def slow_first(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        if server.connections == 1:
            await reader.read()  # never answers; returns when the client gives up and closes
            return
        writer.write(answer())
        await writer.drain()
        await keep_alive(server, reader, writer)

    async with serving(slow_first) as server:
        http = client(server, timeout=0.3)
        with pytest.raises(ResponseLost, match=r"within 0\.3 s"):
            await http.post("sendMessage", b"{}")
        assert await http.post("sendMessage", b"{}") == (200, OK)
        assert server.connections == 2
        await http.close()


async def test_server_closing_an_idle_connection_costs_nothing() -> None:
    """A kept-alive connection the server closed is not written to: the call goes out on a new one."""
    async def one_per_connection(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer())  # says nothing of closing, then closes (a keep-alive timeout)
        await writer.drain()

    async with serving(one_per_connection) as server:
        http = client(server)
        for _ in range(3):
            assert await http.post("sendMessage", b"{}") == (200, OK)
            await asyncio.sleep(0.05)  # the close reaches the client
        assert server.connections == 3 and len(server.requests) == 3
        await http.close()


async def test_unasked_bytes_after_an_answer_close_the_connection() -> None:
    async def chatty(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await server.read_request(reader) is not None:
            writer.write(answer())
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"HTTP/1.1 200 OK\r\n")  # a second answer nobody asked for

    async with serving(chatty) as server:
        http = client(server)
        assert await http.post("getMe", b"{}") == (200, OK)
        await asyncio.sleep(0.1)
        assert await http.post("getMe", b"{}") == (200, OK)
        assert server.connections == 2
        await http.close()


async def test_idle_connections_expire() -> None:
    async with serving(keep_alive) as server:
        http = client(server, keepalive_s=0.1)
        await http.post("getMe", b"{}")
        await http.post("getMe", b"{}")
        await asyncio.sleep(0.2)
        await http.post("getMe", b"{}")
        assert server.connections == 2
        await http.close()


async def test_no_free_connection_in_time_is_not_sent_and_cancelling_drops_the_connection() -> None:
    gate = asyncio.Event()

    async def held(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await server.read_request(reader) is not None:
            await gate.wait()
            writer.write(answer())
            await writer.drain()

    async with serving(held) as server:
        http = client(server, limit=1)
        first = asyncio.create_task(http.post("sendMessage", b"{}"))
        await asyncio.sleep(0.05)
        with pytest.raises(RequestNotSent, match="no connection came free"):
            await http.post("sendMessage", b"{}", time_limit=0.1)
        assert len(server.requests) == 1
        first.cancel()  # cancelled mid-answer: that connection is closed, not reused
        with pytest.raises(asyncio.CancelledError):
            await first
        gate.set()
        assert await http.post("sendMessage", b"{}") == (200, OK)
        assert server.connections == 2
        await http.close()


# --------------------------------------------------------------------------- TLS
def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_tls_verified_against_the_given_trust_and_refused_otherwise(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    async with serving(keep_alive, server_ctx) as server:
        trusting = ssl.create_default_context(cafile=str(cert))
        http = BotApiHttp(f"https://localhost:{server.port}/bot{TOKEN}/", ssl_context=trusting)
        for _ in range(3):
            assert await http.post("sendMessage", b'{"chat_id":1}') == (200, OK)
        assert server.connections == 1
        await http.close()
        # The system's trust store does not know this certificate: refused before anything is sent.
        stranger = BotApiHttp(f"https://localhost:{server.port}/bot{TOKEN}/")
        with pytest.raises(RequestNotSent, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.post("sendMessage", b"{}")
        assert len(server.requests) == 3


# --------------------------------------------------------------------------- through HttpTransport
async def test_transport_maps_not_sent_and_lost_answers(api: FakeBotAPI) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with HttpTransport(api.token, f"http://127.0.0.1:{port}") as nowhere:
        with pytest.raises(TransientError) as e:
            await nowhere.send(Reply("42", "hi", channel="telegram"))
        assert not isinstance(e.value, OutcomeUnknown)
    async with HttpTransport(api.token, api.url) as transport:
        assert await transport.send(Reply("42", "第一条", channel="telegram"))
        api.lose_response_next("sendMessage")
        with pytest.raises(OutcomeUnknown):
            await transport.send(Reply("42", "第二条", channel="telegram"))
        api.fail_next_html("sendMessage", status=502)
        with pytest.raises(TransientError) as e:
            await transport.send(Reply("42", "第三条", channel="telegram"))
        assert not isinstance(e.value, OutcomeUnknown)
        assert await transport.send(Reply("42", "第四条", channel="telegram"))
        assert [m["text"] for m in api.sent_to(42)] == ["第一条", "第二条", "第四条"]
