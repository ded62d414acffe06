"""axe-core run in a Playwright page: the copy bundled in the ``axe-playwright-python`` wheel
(axe-core is MPL-2.0, the wrapper MIT), injected by evaluation, so no test loads it from the
network and the console's Content-Security-Policy needs no exception."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import axe_playwright_python
from playwright.sync_api import Page

#: The axe-core build inside the installed wheel (``axe.min.js`` beside its ``__init__``).
AXE_SCRIPT = Path(axe_playwright_python.__file__).with_name("axe.min.js")

#: The rule sets checked: WCAG 2.0 and 2.1, levels A and AA.
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

#: Impacts that fail a test; "minor" and "moderate" are reported by axe but not enforced.
BLOCKING_IMPACTS = frozenset({"serious", "critical"})


@dataclass(frozen=True)
class Violation:
    """One axe rule broken on a page, with the elements that break it."""

    rule: str
    impact: str
    help: str
    help_url: str
    #: One line per element: its CSS selector and axe's summary of what is wrong.
    nodes: tuple[str, ...]

    @property
    def blocking(self) -> bool:
        return self.impact in BLOCKING_IMPACTS


@cache
def _script() -> str:
    return AXE_SCRIPT.read_text(encoding="utf-8")


def scan(page: Page) -> list[Violation]:
    """The WCAG 2.1 A/AA violations axe finds in ``page`` as it is now (any impact)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_script())
    results: dict[str, Any] = page.evaluate(
        "options => axe.run(document, options)",
        {"runOnly": {"type": "tag", "values": list(WCAG_TAGS)}, "resultTypes": ["violations"]},
    )
    return [
        Violation(
            rule=v["id"],
            impact=v.get("impact") or "unknown",
            help=v["help"],
            help_url=v["helpUrl"],
            nodes=tuple(_node_line(node) for node in v["nodes"]),
        )
        for v in results["violations"]
    ]


def _node_line(node: dict[str, Any]) -> str:
    target = " ".join(map(str, node["target"]))
    summary = " ".join((node.get("failureSummary") or "").split())
    return f"{target}: {summary}"


def report(where: str, violations: list[Violation], limit: int = 5) -> str:
    """``violations`` as a person reads them: rule, impact, help link, then the first elements."""
    lines = [f"{where}: {len(violations)} accessibility violation(s)"]
    for v in violations:
        lines.append(f"  [{v.impact}] {v.rule}: {v.help} ({v.help_url})")
        lines.extend(f"      - {node}" for node in v.nodes[:limit])
        if len(v.nodes) > limit:
            lines.append(f"      … and {len(v.nodes) - limit} more")
    return "\n".join(lines)
