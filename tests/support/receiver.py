"""A real HTTP receiver of status callbacks, in a thread of the test process: it records what it
was sent, checks each request's signature, and answers as the test says (200, a status, 500 at
random, or it can be stopped and started again on the same port)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from engine.callbacks.signing import HEADER, verify
from tests.support.simulator import free_port


@dataclass
class Delivery:
    """One request as the receiver got it."""

    path: str
    body: bytes
    signature: str
    received_at: float
    status: int

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(orjson.loads(self.body)["events"])


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    #: The status answered; or a callable of the request number.
    answer: int | Callable[[int], int] = 200
    #: Requests answered, in the order their answers went.
    deliveries: list[Delivery] = field(default_factory=list)
    _requests: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The answer's headers and body go in two writes: with Nagle's algorithm on, the
            # second waits for the client's delayed ACK (40 ms a request), which is the
            # receiver's slowness, not the sender's.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received_at = time.time()
                with receiver._lock:
                    number = receiver._requests
                    receiver._requests += 1
                # Outside the lock: an answer may take its time (a slow or hanging receiver).
                status = receiver.answer(number) if callable(receiver.answer) else receiver.answer
                with receiver._lock:
                    receiver.deliveries.append(
                        Delivery(self.path, body, self.headers.get(HEADER, ""), received_at, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def in_flight(self) -> int:
        """Requests received and not answered yet."""
        with self._lock:
            return self._requests - len(self.deliveries)

    def accepted(self) -> list[Delivery]:
        """The requests answered 2xx."""
        with self._lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def events(self) -> list[dict[str, Any]]:
        """Every event of every request answered 2xx, in the order received."""
        return [event for delivery in self.accepted() for event in delivery.events]

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events()):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"receiver: condition not met after {timeout:.0f}s; {len(self.events())} events"
                )
            time.sleep(0.1)

    def all_signed_with(self, secret: str) -> bool:
        with self._lock:
            return all(verify(d.signature, d.body, secret, int(d.received_at)) for d in self.deliveries)


def random_failures(rate: float, seed: int = 7) -> Callable[[int], int]:
    """An answer that is 500 for ``rate`` of the requests, at random, else 200."""
    rand = random.Random(seed)
    return lambda _number: 500 if rand.random() < rate else 200


@contextmanager
def running_receiver(answer: int | Callable[[int], int] = 200) -> Iterator[Receiver]:
    receiver = Receiver(answer=answer)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def main() -> None:
    """A receiver in a process of its own (the benchmark's, so that it shares no interpreter
    with what measures): answers 200 on ``--port`` and, when stopped (SIGTERM), writes one JSON
    line per request to ``--out``: its arrival time and body."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True, help="file the requests are written to when stopped")
    args = parser.parse_args()
    receiver = Receiver(port=args.port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    receiver.start()
    stopped.wait()
    receiver.stop()
    with open(args.out, "wb") as out:
        for delivery in receiver.deliveries:
            out.write(orjson.dumps({"received_at": delivery.received_at, "status": delivery.status}))
            out.write(b"\t" + delivery.body + b"\n")


if __name__ == "__main__":
    main()
