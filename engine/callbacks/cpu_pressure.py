"""Whether this machine's CPUs are contended now, from Linux's pressure stall information.

``some total=`` in ``cpu.pressure`` counts the microseconds in which at least one runnable task
waited for a CPU. Its growth over the last second, as a share of that second, says how contended
the CPUs are: near 0 on an idle machine, most of the time when sending keeps both cores busy. The
cgroup's own file is read where there is one (a container's CPUs), else the machine's. Where
neither exists (not Linux, an old kernel), the CPUs never count as contended.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

#: Where to read, first found first.
PATHS = (Path("/sys/fs/cgroup/cpu.pressure"), Path("/proc/pressure/cpu"))
#: Seconds over which the share is measured (a shorter window flickers with every burst).
WINDOW_SECONDS = 1.0
#: Share of a window with a task waiting for a CPU above which the CPUs count as contended.
CONTENDED_SHARE = 0.2


def stalled_microseconds(path: Path) -> int | None:
    """The ``some total=`` counter of ``path``, or None if it cannot be read."""
    try:
        first_line = path.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    for field in first_line.split():
        if field.startswith("total="):
            return int(field[len("total=") :])
    return None


class CpuPressure:
    def __init__(self, path: Path | None = None, share: float = CONTENDED_SHARE) -> None:
        self.path = path if path is not None else next((p for p in PATHS if p.exists()), None)
        self.share = share
        self._since: tuple[float, int] | None = None
        self._contended = False
        self._lock = threading.Lock()  # asked from the dispatcher's round and its threads

    def contended(self) -> bool:
        """True while tasks waited for a CPU at least `share` of the last measured window."""
        if self.path is None:
            return False
        stalled = stalled_microseconds(self.path)
        if stalled is None:
            return False
        with self._lock:
            now = time.monotonic()
            if self._since is None:
                self._since = (now, stalled)
            elif now - self._since[0] >= WINDOW_SECONDS:
                began, stalled_then = self._since
                self._contended = (stalled - stalled_then) / ((now - began) * 1_000_000) >= self.share
                self._since = (now, stalled)
            return self._contended
