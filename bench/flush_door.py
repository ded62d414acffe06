"""What the flusher's door (`engine.lifecycle.flush_admission.admit`) costs per outcome, beside decoding the
entries it had to decode anyway.

    .venv/bin/python bench/flush_door.py [--outcomes 30000] [--rounds 20]

Builds result-stream entries as workers write them (batches of 1,000 outcomes: accepted with a
carrier id, 2% failed with a reason) and a page of delivery reports, then times plain
``orjson.loads`` of every entry (what the flusher did before) against ``admit`` (decode and
check). Prints the median over ``rounds`` in milliseconds per ``outcomes`` outcomes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.lifecycle.flush_admission import admit


def entries(outcomes: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
    now = time.time()
    made = []
    for batch in range(outcomes // 1000):
        packed = [
            (seq, "failed", "carrier_3015", "수신 거부", None)
            if seq % 50 == 0
            else (seq, "submitted", None, None, f"20261207000000{batch:06d}:{seq}")
            for seq in range(batch * 1000, batch * 1000 + 1000)
        ]
        entry = {"t": "send", "job": 42, "ca": now, "batch": batch, "done": True, "at": now, "o": packed}
        made.append((f"{batch}-0".encode(), {b"d": orjson.dumps(entry)}))
    reports = [(42, seq, "delivered", None, None, now, 0) for seq in range(1000)]
    made.append((b"r-0", {b"d": orjson.dumps({"t": "report", "c": "nhn_sms", "r": reports})}))
    return made


def median_ms(run: object, rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outcomes", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    page = entries(args.outcomes)
    count = args.outcomes + 1000
    decode = median_ms(lambda: [orjson.loads(fields[b"d"]) for _, fields in page], args.rounds)
    door = median_ms(lambda: admit(page), args.rounds)
    print(f"{count:,} outcomes: decode only {decode:.1f} ms, decode + checks {door:.1f} ms")
    print(f"checks: {(door - decode) * 1000 / count:.2f} µs per outcome")


if __name__ == "__main__":
    main()
