"""Operators' passwords and roles, without a database.

Given a new operator's email, when a password is checked against the rules, then a short one,
the email itself (or its local part, bare or padded with digits), one character repeated, a run
of digits or of the keyboard, or a well-known password is refused with a Korean reason, and a
long phrase — Korean included — passes. Hashes are argon2id, salted, verify only their own
password, and treat composed and decomposed Hangul alike. Roles map onto the API's scopes.
"""

from __future__ import annotations

import unicodedata

import pytest

from api.scopes import Action, allowed
from engine.accounts import passwords
from engine.accounts.operators import ROLE_LABELS, ROLE_SCOPES, ROLES, normalise_email
from engine.accounts.tenants import ALL_SCOPES
from engine.errors import ValidationError

EMAIL = "kim.minsu@acme.co.kr"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-pw1", "10자 이상"),
        ("x" * (passwords.MAX_LENGTH + 1), "이하"),
        (EMAIL, "이메일"),
        (EMAIL.upper(), "이메일"),
        ("kim.minsu", "10자 이상"),  # 9 characters: too short before it is anything else
        ("kim.minsu1", "이메일"),
        ("Kim.Minsu2024!", "이메일"),
        (f"my {EMAIL} pw", "이메일"),
        ("aaaaaaaaaaaa", "반복"),
        ("1234567890", "연속"),
        ("7890123456", "연속"),
        ("0987654321", "연속"),
        ("qwertyuiop", "연속"),
        ("abcdefghijkl", "연속"),
        ("password123", "흔한"),
        ("Qwerty12345", "흔한"),
    ],
)
def test_a_password_that_breaks_a_rule_is_refused_saying_which(password: str, reason: str) -> None:
    # Given a new operator's email, When a password breaking one rule is checked
    with pytest.raises(ValidationError) as refused:
        passwords.check_password(password, EMAIL)
    # Then it is refused on the password field, in Korean, naming the rule
    assert refused.value.field == "password"
    assert reason in refused.value.reason, refused.value.reason


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery",
        "봄날의 발송 콘솔 비밀번호",
        "kimchi-stew-42",
        "p" + "a" * 9 + "!",
        "가나다라마바사아" * 16,
    ],
)
def test_a_long_password_or_phrase_passes(password: str) -> None:
    # Given a password of 10 or more characters that is none of the refused kinds
    # When it is checked, Then it passes (normalised)
    assert passwords.check_password(password, EMAIL) == unicodedata.normalize("NFKC", password)


def test_a_hash_is_salted_argon2id_and_verifies_only_its_password() -> None:
    # Given a password hashed twice
    first = passwords.hash_password("correct horse battery")
    second = passwords.hash_password("correct horse battery")
    # Then each is an argon2id PHC string with its own salt, and neither holds the password
    assert first.startswith("$argon2id$") and second.startswith("$argon2id$")
    assert first != second and "horse" not in first
    # And each verifies the password and nothing else
    assert passwords.verify_password(first, "correct horse battery")
    assert passwords.verify_password(second, "correct horse battery")
    assert not passwords.verify_password(first, "correct horse battery ")
    assert not passwords.verify_password(first, "Correct horse battery")
    # And a hash made with today's parameters needs no rehash
    assert not passwords.needs_rehash(first)


def test_hangul_typed_composed_or_decomposed_is_the_same_password() -> None:
    # Given a Korean password hashed as typed on one system (composed syllables)
    composed = unicodedata.normalize("NFC", "봄날의 발송 콘솔")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    hashed = passwords.hash_password(composed)
    # When it is typed on another (decomposed jamo), Then it verifies
    assert passwords.verify_password(hashed, decomposed)


def test_no_account_and_a_broken_hash_verify_nothing() -> None:
    # Given no hash (no such account) or a hash that is not one
    # When any password is verified against them, Then it is refused, without an error
    assert not passwords.verify_password(None, "correct horse battery")
    assert not passwords.verify_password("not-a-hash", "correct horse battery")


@pytest.mark.parametrize(
    ("given", "stored"),
    [(" Kim@Acme.CO.kr ", "kim@acme.co.kr"), ("ops+console@acme.kr", "ops+console@acme.kr")],
)
def test_an_email_is_stored_trimmed_and_in_lower_case(given: str, stored: str) -> None:
    assert normalise_email(given) == stored


@pytest.mark.parametrize("email", ["", "kim", "kim@", "@acme.kr", "kim@acme", "kim @acme.kr", "a@b@c.kr"])
def test_what_is_no_email_is_refused(email: str) -> None:
    with pytest.raises(ValidationError) as refused:
        normalise_email(email)
    assert refused.value.field == "email"


def test_roles_are_sets_of_the_apis_scopes() -> None:
    # Given the three roles
    assert ROLES == ("viewer", "sender", "admin") and set(ROLE_LABELS) == set(ROLES)
    # Then a viewer reads, a sender also sends, an admin holds every tenant scope
    assert ROLE_SCOPES["viewer"] == {"read"}
    assert ROLE_SCOPES["sender"] == {"send", "read"}
    assert ROLE_SCOPES["admin"] == set(ALL_SCOPES) >= {"admin", "export:unmasked"}


@pytest.mark.parametrize(
    ("role", "may", "may_not"),
    [
        (
            "viewer",
            {Action.LIST_JOBS, Action.VIEW_JOB, Action.EXPORT_RESULTS},
            {Action.CANCEL, Action.RESEND},
        ),
        (
            "sender",
            {Action.CANCEL, Action.RESEND, Action.RESUME},
            {Action.VIEW_AUDIT, Action.EXPORT_UNMASKED},
        ),
        ("admin", set(Action), set()),
    ],
)
def test_a_role_may_do_what_the_apis_table_allows_its_scopes(
    role: str, may: set[Action], may_not: set[Action]
) -> None:
    # Given an operator of each role, as the console sees them
    from engine.accounts.operators import Operator

    who = Operator(1, 1, "op@acme.kr", role, 0, None, None, None, None).principal()  # type: ignore[arg-type]
    # Then the table of `api.scopes` decides what they may do, as it does for API keys
    assert who.key_id is None and who.actor == "op@acme.kr"
    assert all(allowed(action, who) for action in may)
    assert not any(allowed(action, who) for action in may_not)
