"""Intake's CPU per job, in process: the body decoded whole (orjson, as before streaming) against
read as it arrives (engine.intake.job_request, 64 KiB chunks), each followed by `prepare_job`.

    .venv/bin/python bench/intake_parse.py [--recipients 200000] [--runs 7]

CPU time of this process (time.process_time), so other work on the machine barely moves it;
the two ways alternate, and the best run of each is printed. No server, no database: the
HTTP and storage parts of intake are the same either way (bench/intake_time.py times them all).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.intake_time import job_payload
from engine.intake.intake import prepare_job
from engine.intake.job_request import JobRequestReader

CHUNK = 64 * 1024


def whole(body: bytes, max_recipients: int) -> int:
    decoded = orjson.loads(body)
    return prepare_job(decoded, max_recipients=max_recipients, raw_body=body).total


def streamed(body: bytes, max_recipients: int) -> int:
    reader = JobRequestReader(max_recipients)
    for start in range(0, len(body), CHUNK):
        reader.feed(body[start : start + CHUNK])
    request = reader.finish()
    job = prepare_job(request.fields, max_recipients=max_recipients)
    assert request.body_sha256 == hashlib.sha256(body).digest()
    return job.total


def cpu(way: Callable[[bytes, int], int], body: bytes, recipients: int) -> float:
    started = time.process_time()
    assert way(body, recipients) == recipients
    return time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    body = job_payload(args.recipients, 20_000_000)
    times: dict[str, list[float]] = {"whole": [], "streamed": []}
    for _ in range(args.runs):
        times["whole"].append(cpu(whole, body, args.recipients))
        times["streamed"].append(cpu(streamed, body, args.recipients))
    best = {way: min(values) for way, values in times.items()}
    print(f"{args.recipients:,} recipients, {len(body) / 1e6:.1f} MB, best of {args.runs} (CPU seconds):")
    print(f"  decoded whole (orjson.loads) + prepare_job:      {best['whole']:.3f}")
    print(f"  read as it arrives (JobRequestReader) + prepare: {best['streamed']:.3f}")
    print(f"  streamed / whole: {best['streamed'] / best['whole']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
