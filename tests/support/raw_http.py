"""HTTP/1.1 requests over a plain socket, for what httpx cannot do: keep a request's body half
sent, or stop sending a body as soon as the server has answered."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import orjson


class OpenRequest:
    """A POST whose body is sent bit by bit: chunked, unless ``content_length`` is given."""

    def __init__(
        self, port: int, path: str, headers: dict[str, str], *, content_length: int | None = None
    ) -> None:
        self.chunked = content_length is None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append("Transfer-Encoding: chunked" if self.chunked else f"Content-Length: {content_length}")
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        self.sent = 0
        self._early = b""

    def send(self, data: bytes) -> None:
        if data:
            self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data)
            self.sent += len(data)

    def end(self) -> None:
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")

    def answered(self) -> bool:
        """True once the server has begun to answer (without waiting for it)."""
        if self._early:
            return True
        self.sock.setblocking(False)
        try:
            self._early = self.sock.recv(65536)
        except BlockingIOError:
            self._early = b""
        except ConnectionResetError:
            self._early = b""
            return True
        finally:
            self.sock.setblocking(True)
        return bool(self._early)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """(status, headers in lower case, body) of the server's answer."""
        data = self._early
        try:
            while b"\r\n\r\n" not in data:
                more = self.sock.recv(65536)
                if not more:
                    break
                data += more
        except ConnectionResetError:
            pass
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/"):
            return 0, {}, b""
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        try:
            while len(body) < length:
                more = self.sock.recv(65536)
                if not more:
                    break
                body += more
        except ConnectionResetError:
            pass
        return int(lines[0].split(" ", 2)[1]), headers, body

    def close(self) -> None:
        self.sock.close()


def post_streamed(
    port: int,
    path: str,
    headers: dict[str, str],
    chunks: Iterable[bytes],
    *,
    content_length: int | None = None,
) -> tuple[int, dict[str, str], bytes, int]:
    """POST a body as it is generated and stop sending as soon as the server answers:
    (status, headers, body, body bytes sent)."""
    request = OpenRequest(port, path, headers, content_length=content_length)
    try:
        try:
            for chunk in chunks:
                if request.answered():
                    break
                request.send(chunk)
            else:
                request.end()
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, answer_headers, body = request.response()
        return status, answer_headers, body, request.sent
    finally:
        request.close()


def error_of(body: bytes) -> dict[str, object]:
    """balsong's error answer, a problem (`api.problems`), decoded (empty if there is none)."""
    if not body.startswith(b"{"):
        return {}
    answer = orjson.loads(body)
    return answer if isinstance(answer, dict) and "code" in answer else {}
