"""``python -m carriers.simulator``: serve the simulator with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import argparse
import gc
from collections.abc import Sequence

import uvicorn

from carriers.simulator.app import create_app
from carriers.simulator.options import add_arguments, behaviour_from


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m carriers.simulator", description=__doc__)
    add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    serve(parse_args(argv))


def serve(args: argparse.Namespace) -> None:
    """Run the simulator until interrupted."""
    app = create_app(args.app_key, args.secret_key, behaviour_from(args), args.kakao_sender_key)
    # Each 1000-recipient request allocates thousands of short-lived dicts; the default
    # threshold (700) would run a collection several times per request.
    gc.set_threshold(20_000, 50, 100)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
