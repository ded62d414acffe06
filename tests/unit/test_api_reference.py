"""docs/api.md says what the code does (issue 25 item 6).

Its tables of reason codes, statuses and problem codes are generated (``python -m
api.reference_doc --write``) and compared here; and the catalogues they are made from are held
to the code: every reason code and every problem code the code base can produce has an entry,
every entry is one the code can produce, every provider code has its Korean text and advice, and
every route is in the page.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from api import reference_doc
from carriers import nhn_alimtalk_codes, nhn_sms_codes
from engine import reason_codes

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "api.md"


def calls(paths: list[Path]) -> Iterator[ast.Call]:
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call):
                yield node


def name_of(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def text(node: ast.expr | None) -> list[str]:
    """The string constants ``node`` can be (a constant, or either branch of ``a if c else b``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return text(node.body) + text(node.orelse)
    return []


def py(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_the_page_is_what_the_code_generates() -> None:
    # Given docs/api.md as committed, when its generated blocks are made again, then nothing changes
    page = PAGE.read_text(encoding="utf-8")
    assert reference_doc.updated(page) == page, (
        "docs/api.md is out of date: python -m api.reference_doc --write"
    )


def own_codes_in_the_code() -> set[str]:
    """Every reason code of balsong's own that engine/ can give a recipient."""
    found = {"invalid_phone"}  # InvalidPhone's default
    for call in calls(py("engine/intake", "engine/lifecycle")):
        if name_of(call) == "InvalidPhone" and len(call.args) > 1:
            found.update(text(call.args[1]))
        elif name_of(call) == "RecipientRow" and len(call.args) > 4:
            found.update(text(call.args[4]))
    for path in py("engine"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # code = "..." in a module that writes recipients' codes (the fallback's), and the
            # named reasons (EXPIRED_REASON, OPTED_OUT ...).
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                target = node.targets[0].id
                if (
                    target.endswith("_REASON")
                    or target == "OPTED_OUT"
                    or (target == "code" and path.name == "fallback.py")
                ):
                    found.update(text(node.value))
    return found


def test_every_own_reason_code_the_engine_gives_is_documented_and_no_other() -> None:
    # Given the reason codes engine/ writes on recipients, found in its source
    in_code = own_codes_in_the_code()
    # Then the catalogue has exactly those
    assert {r.code for r in reason_codes.OWN_REASONS} == in_code


def test_every_provider_code_has_korean_text_english_text_and_advice() -> None:
    # Given the catalogue of the providers' codes (built from the adapters' tables)
    sms, kakao = reason_codes.sms_reasons(), reason_codes.kakao_reasons()

    # Then every failure code of each table is there, namespaced
    sms_codes = {r.code for r in sms}
    assert {f"carrier_{c}" for c in nhn_sms_codes.API_CODES if c != 0} <= sms_codes
    assert {
        f"carrier_{c}" for c in nhn_sms_codes.RESULT_CODES if c not in nhn_sms_codes.DELIVERED_CODES
    } <= sms_codes
    kakao_codes = {r.code for r in kakao}
    assert {
        f"carrier_{c}" for c in nhn_alimtalk_codes.RESULT_CODES if c not in ("1000", "3005")
    } <= kakao_codes
    assert "carrier_-3005" in kakao_codes and "carrier_-1031" not in kakao_codes
    # And each has both texts and something to do; no code is listed twice per provider
    for reasons in (sms, kakao, list(reason_codes.OWN_REASONS)):
        assert len({r.code for r in reasons}) == len(reasons)
        for reason in reasons:
            assert reason.ko and reason.en and len(reason.action) > 10 and reason.statuses, reason
            assert any("\uac00" <= ch <= "\ud7a3" for ch in reason.ko), (
                f"{reason.code}: no Hangul in {reason.ko!r}"
            )


def test_a_provider_code_without_korean_text_cannot_be_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the SMS table with a code the catalogue does not know yet
    monkeypatch.setitem(nhn_sms_codes.RESULT_CODES, "4999", "A new failure")
    # Then building the catalogue fails, rather than print a row without Korean text or advice
    with pytest.raises(KeyError, match="4999"):
        reason_codes.sms_reasons()


def problem_codes_in_the_code() -> set[str]:
    """Every problem ``code`` the API can answer, found in api/ and engine/."""
    found = {"invalid", "http_error"}  # ValidationError's default; an HTTP error of another status
    for call in calls(py("api", "engine")):
        name = name_of(call)
        if name in ("problem", "AuthError") and len(call.args) > 1:
            found.update(text(call.args[1]))
        elif name in ("JobStateConflict", "IntakeLimited", "__init__") and call.args:
            found.update(c for c in text(call.args[0]) if c.islower() and "_" in c)
        if name.endswith("Error") or name == "__init__":  # ValidationError(..., code="x") and its kin
            found.update(c for k in call.keywords if k.arg == "code" for c in text(k.value))
    for path in (ROOT / "engine" / "errors.py", ROOT / "api" / "problems.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id == "code":
                    found.update(text(node.value))
                elif node.targets[0].id == "_HTTP_CODES" and isinstance(node.value, ast.Dict):
                    found.update(c for v in node.value.values for c in text(v))
    return found


def test_every_problem_code_is_documented_and_no_other() -> None:
    # Given the problem codes found in the source
    in_code = problem_codes_in_the_code()
    # Then the page's table has exactly those
    assert set(reference_doc.PROBLEM_CODES) == in_code


def routes() -> set[str]:
    """Every route of the API as ``METHOD /path``, from the routers' prefixes and decorators."""
    found = set()
    for path in py("api"):
        if "console" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        prefix = ""
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and name_of(node) == "APIRouter":
                prefix = next((text(k.value)[0] for k in node.keywords if k.arg == "prefix"), "")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    if isinstance(decorator, ast.Call) and name_of(decorator) in (
                        "get",
                        "post",
                        "put",
                        "delete",
                    ):
                        target = decorator.func
                        if isinstance(target, ast.Attribute) and getattr(target.value, "id", "") == "router":
                            found.add(f"{name_of(decorator).upper()} {prefix}{text(decorator.args[0])[0]}")
    return found


def test_every_route_is_in_the_page() -> None:
    # Given every route of the API's routers
    page = PAGE.read_text(encoding="utf-8")
    every = routes()
    assert len(every) > 30
    # Then each is named in the page as METHOD /path
    assert sorted(r for r in every if f"`{r}`" not in page) == []


def test_statuses_all_have_a_meaning() -> None:
    block = "\n".join(reference_doc.statuses_block())
    for status in (*reason_codes.RecipientStatus, *reference_doc.JobStatus):
        assert f"`{status}`" in block
