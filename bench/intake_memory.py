"""Intake memory: the API processes' peak RSS under four large job requests at once.

    .venv/bin/python bench/intake_memory.py [--junk-mb 190] [--valid-recipients 1000000] [--workers 2]

Two rounds against an API of ``--workers`` uvicorn processes on 127.0.0.1, each round four
requests from one tenant at once:

1. junk: a valid job of 10 recipients plus a ``"junk"`` string field of ``--junk-mb`` MB, sent
   chunked (no Content-Length) as it is generated, the case of the security review;
2. valid: ``--valid-jobs`` jobs (4) of ``--valid-recipients`` personalised recipients (0 skips
   the round), sent with their Content-Length.

For each round: each API process's RSS before and its peak during the round (Linux VmHWM, reset
before the round), the status codes returned and the bytes each client got to send before the
answer. The review's figures (91 -> 605 MB for one request; 611 + 1,643 MB for four) are printed
beside them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api_only import RunningApi, peak_rss_reset, rss_mb, running_api
from engine.db import upgrade
from tests.support.raw_http import error_of, post_streamed
from tests.support.services import isolated_settings
from tests.support.stack import SENDER

#: The security review's figures, in MB: one request took a worker from 91 to 605; four at once
#: peaked at 611 and 1,643 in the two workers.
REVIEW_ONE = (91.0, 605.0)
REVIEW_FOUR = (611.0, 1643.0)
CHUNK = 64 * 1024


def junk_chunks(junk_mb: int, run: int) -> Iterator[bytes]:
    job = {
        "channel": "sms",
        "sender": SENDER,
        "body": "메모리",
        "recipients": [{"phone": f"010{70_000_000 + run * 100 + i:08d}"} for i in range(10)],
    }
    yield orjson.dumps(job)[:-1] + b',"junk":"'
    filler = b"x" * CHUNK
    for _ in range(junk_mb * 1024 * 1024 // CHUNK):
        yield filler
    yield b'"}'


def valid_body(recipients: int, run: int) -> bytes:
    return orjson.dumps(
        {
            "channel": "auto",
            "sender": SENDER,
            "body": "[balsong] #{name}님, 주문하신 상품이 발송되었습니다.",
            "recipients": [
                {"phone": f"010{(run * recipients + i) % 100_000_000:08d}", "variables": {"name": f"고객{i}"}}
                for i in range(recipients)
            ],
        }
    )


def in_slices(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


def measure(
    api: RunningApi, label: str, requests: list[tuple[dict[str, str], Iterator[bytes], int | None]]
) -> None:
    pids = api.worker_pids()
    before = {pid: rss_mb(pid)[0] for pid in pids}
    for pid in pids:
        peak_rss_reset(pid)
    started = time.monotonic()
    with ThreadPoolExecutor(len(requests)) as pool:
        futures = [
            pool.submit(post_streamed, api.port, "/v1/jobs", headers, chunks, content_length=length)
            for headers, chunks, length in requests
        ]
        answers = [f.result() for f in futures]
    elapsed = time.monotonic() - started
    peaks = {pid: _peak(pid) for pid in pids}
    print(f"\n{label} ({elapsed:.1f}s)")
    for status, _, body, sent in answers:
        code = str(error_of(body).get("code", ""))
        print(f"  answer {status} {code:<28} after {sent / 1e6:8.1f} MB sent")
    for pid in pids:
        peak = f"peak {peaks[pid]:7.0f} MB" if peaks[pid] else "gone (no answer to uvicorn's health check)"
        print(f"  API process {pid}: RSS {before[pid]:7.0f} MB before, {peak}")
    print(f"  sum of peaks: {sum(peaks.values()):,.0f} MB")


def _peak(pid: int) -> float:
    try:
        return rss_mb(pid)[1]
    except FileNotFoundError:
        return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--junk-mb", type=int, default=190)
    parser.add_argument("--valid-recipients", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--valid-jobs", type=int, default=4, help="valid jobs sent at once")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="balsong-bench-"))
    with isolated_settings() as settings:
        upgrade(settings.database_url)
        with running_api(settings, log_dir, workers=args.workers) as api:
            key = api.new_tenant("bench-memory")
            auth = {"Authorization": f"Bearer {key}"}
            # Warm up every worker (imports, pools) so that "before" is a serving process's size.
            for run in range(4 * args.workers):
                post_streamed(api.port, "/v1/jobs", auth, junk_chunks(0, 90 + run))
            measure(
                api,
                f"1 x {args.junk_mb} MB junk field, chunked",
                [(auth, junk_chunks(args.junk_mb, 0), None)],
            )
            measure(
                api,
                f"4 x {args.junk_mb} MB junk field at once, chunked",
                [(auth, junk_chunks(args.junk_mb, 1 + run), None) for run in range(4)],
            )
            if args.valid_recipients:
                bodies = [valid_body(args.valid_recipients, run) for run in range(args.valid_jobs)]
                measure(
                    api,
                    f"{args.valid_jobs} x valid job of {args.valid_recipients:,} recipients "
                    f"({len(bodies[0]) / 1e6:.0f} MB) at once",
                    [(auth, in_slices(body), len(body)) for body in bodies],
                )
    print(
        f"\nreview (before): 1 request {REVIEW_ONE[0]:.0f} -> {REVIEW_ONE[1]:.0f} MB; "
        f"4 at once {REVIEW_FOUR[0]:,.0f} + {REVIEW_FOUR[1]:,.0f} MB; logs: {log_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
