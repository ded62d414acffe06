"""Operators' passwords: the rules a new one must meet, and its argon2id hash.

Rules (NIST SP 800-63B's, which KISA's guidance follows for length over composition): at least
:data:`MIN_LENGTH` characters, at most :data:`MAX_LENGTH`, not the account's email or its local
part (with or without case), not one character repeated, not a run of the keyboard or the digits,
not one of :data:`COMMON`. No rule on character classes: a long Korean phrase is a good password.

A password is normalised to Unicode NFKC before it is checked or hashed, so the same Hangul typed
as composed or decomposed syllables (macOS and Windows differ) is the same password.

Hashes are argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, three
passes); a hash made with older parameters is replaced at the next successful sign-in
(:func:`needs_rehash`). Only the hash is ever stored.
"""

from __future__ import annotations

import functools
import threading
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from engine.errors import ValidationError

#: Fewest characters a password may have.
MIN_LENGTH = 10
#: Most characters a password may have (hashing a megabyte on every sign-in is a denial of service).
MAX_LENGTH = 128
#: Passwords of at least MIN_LENGTH characters that lists of leaked passwords start with.
COMMON = frozenset(
    {
        "password12",
        "password123",
        "password1234",
        "passw0rd12",
        "qwertyuiop",
        "qwerty1234",
        "qwerty12345",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "asdfghjkl;",
        "iloveyou12",
        "admin12345",
        "administrator",
        "letmein123",
        "welcome123",
        "sarang1234",
        "balsong1234",
    }
)
#: Rows whose runs are refused whole ("abcdefghij", "qwertyuiop" and backwards); digits go round
#: ("7890123456").
_DIGITS = "0123456789"
_LETTER_ROWS = ("abcdefghijklmnopqrstuvwxyz", "qwertyuiop")

#: Password hashes computed at once in one process. Each takes 64 MiB and a core for tens of
#: milliseconds: a flood of sign-ins waits its turn instead of exhausting memory.
MAX_CONCURRENT_HASHES = 4

_hasher = PasswordHasher()
_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


@functools.cache
def _dummy_hash() -> str:
    """A hash of nothing anyone can type, verified when no account matches so that an unknown
    email costs as long as a wrong password (no timing tells which emails have accounts). Made
    on first use, not at import."""
    return _hasher.hash("\x00 no account has this password \x00")


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_password(password: str, email: str) -> str:
    """``password`` normalised, if it meets the rules for the account ``email``; otherwise a
    ValidationError on ``password`` saying (in Korean, for the console and the CLI) which rule."""
    password = normalise(password)
    if len(password) < MIN_LENGTH:
        raise _weak(f"비밀번호는 {MIN_LENGTH}자 이상이어야 합니다.")
    if len(password) > MAX_LENGTH:
        raise _weak(f"비밀번호는 {MAX_LENGTH}자 이하여야 합니다.")
    folded = password.casefold()
    email = email.strip().casefold()
    local = email.partition("@")[0]
    padded = len(local) >= 4 and folded.startswith(local) and _filler(folded[len(local) :])
    if folded in (email, local) or padded:
        raise _weak("이메일 주소(또는 그 아이디)를 비밀번호로 쓸 수 없습니다.")
    if email in folded:
        raise _weak("비밀번호에 이메일 주소를 넣을 수 없습니다.")
    if len(set(folded)) == 1:
        raise _weak("한 글자만 반복한 비밀번호는 쓸 수 없습니다.")
    if _is_run(folded):
        raise _weak("연속된 숫자나 자판 배열은 비밀번호로 쓸 수 없습니다.")
    if folded in COMMON:
        raise _weak("너무 흔한 비밀번호입니다. 다른 비밀번호를 쓰세요.")
    return password


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, salt included) of a password that passed `check_password`."""
    with _slots:
        return _hasher.hash(normalise(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from. ``None`` (no such account)
    verifies a dummy hash, taking as long, and is False."""
    try:
        with _slots:
            verified = _hasher.verify(password_hash or _dummy_hash(), normalise(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return verified and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (rehash it on sign-in)."""
    return _hasher.check_needs_rehash(password_hash)


def _weak(reason: str) -> ValidationError:
    return ValidationError("password", reason)


def _filler(rest: str) -> bool:
    """Digits and punctuation only: ``kim.minsu2024!`` is the local part ``kim.minsu`` padded."""
    return all(not ch.isalpha() for ch in rest) and len(rest) <= 6


def _is_run(folded: str) -> bool:
    if folded.isdigit():
        return folded in _DIGITS * 3 or folded in _DIGITS[::-1] * 3
    return any(folded in row or folded in row[::-1] for row in _LETTER_ROWS)
