"""The simulator's command-line options: on its own parser (``python -m carriers.simulator``) or
on ``balsong simulator``'s. Light to import: no server is loaded."""

from __future__ import annotations

import argparse
import json

from carriers.simulator.behaviour import Behaviour


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's options, on its own parser or on ``balsong simulator``'s."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8070, help="TCP port to listen on (default: 8070)")
    parser.add_argument(
        "--app-key", default="balsong-local", help="the NHN Cloud appKey it accepts (default: balsong-local)"
    )
    parser.add_argument(
        "--secret-key",
        default="balsong-local-secret",
        help="the X-Secret-Key it accepts (default: balsong-local-secret)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="milliseconds added to every answer")
    parser.add_argument(
        "--result-delay-ms", type=float, default=0.0, help="milliseconds from acceptance to the final result"
    )
    parser.add_argument(
        "--failure-rate", type=float, default=0.0, help="fraction (0-1) of recipients ending 3015 (no route)"
    )
    parser.add_argument(
        "--failure-mix",
        type=json.loads,
        default=None,
        help='result code to fraction (0-1), JSON: {"3015": 0.02}',
    )
    parser.add_argument(
        "--reject-mix",
        type=json.loads,
        default=None,
        help='refusal code at submission to fraction (0-1), JSON: {"-2019": 0.01}',
    )
    parser.add_argument(
        "--http-5xx-rate", type=float, default=0.0, help="fraction (0-1) of requests answered 500"
    )
    parser.add_argument(
        "--http-429-rate", type=float, default=0.0, help="fraction (0-1) of requests answered 429"
    )
    parser.add_argument(
        "--timeout-rate",
        type=float,
        default=0.0,
        help="fraction (0-1) of requests answered only after --timeout-sleep-ms",
    )
    parser.add_argument(
        "--timeout-sleep-ms",
        type=float,
        default=30_000.0,
        help="milliseconds a timed-out request hangs (default: 30000)",
    )
    parser.add_argument(
        "--rate-cap-per-second",
        type=float,
        default=0.0,
        help="recipients per second beyond which it answers 429 (0: no cap)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the failure draws")
    parser.add_argument(
        "--kakao-sender-key", default="balsong-sender-key", help="the AlimTalk senderKey it accepts"
    )
    parser.add_argument(
        "--kakao-result-delay-ms",
        type=float,
        default=0.0,
        help="milliseconds from an AlimTalk acceptance to its result",
    )
    parser.add_argument(
        "--kakao-failure-mix",
        type=json.loads,
        default=None,
        help='AlimTalk result code to fraction (0-1), JSON: {"3019": 0.05, "3020": 0.01}',
    )
    parser.add_argument(
        "--clock-offset-seconds",
        type=float,
        default=0.0,
        help="seconds the AlimTalk clock runs ahead of this machine's",
    )
    parser.add_argument(
        "--no-report-rate",
        type=float,
        default=0.0,
        help="fraction (0-1) of accepted recipients never reported",
    )


def behaviour_from(args: argparse.Namespace) -> Behaviour:
    failure_mix = (
        args.failure_mix
        if args.failure_mix is not None
        else ({"3015": args.failure_rate} if args.failure_rate else {})
    )
    return Behaviour().updated(
        {
            "latency_ms": args.latency_ms,
            "result_delay_ms": args.result_delay_ms,
            "failure_mix": failure_mix,
            "reject_mix": args.reject_mix or {},
            "http_5xx_rate": args.http_5xx_rate,
            "http_429_rate": args.http_429_rate,
            "timeout_rate": args.timeout_rate,
            "timeout_sleep_ms": args.timeout_sleep_ms,
            "rate_cap_per_second": args.rate_cap_per_second,
            "seed": args.seed,
            "kakao_failure_mix": args.kakao_failure_mix or {},
            "kakao_result_delay_ms": args.kakao_result_delay_ms,
            "clock_offset_seconds": args.clock_offset_seconds,
            "no_report_rate": args.no_report_rate,
        }
    )
