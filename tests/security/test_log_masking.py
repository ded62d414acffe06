"""Phone numbers written in any digits are masked in logs, like ASCII ones.

Given the processes' log configuration (the MaskPhones filter, JSON lines), when a record holds
a phone number in full-width or other Unicode digits — a carrier webhook's ``recipientNo`` as
it was received — in its message, arguments, extras or exception, then the line shows it as
``010-****-5432`` and none of its middle digits.
"""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from engine.logs import JsonFormatter, MaskPhones, mask_phones


@pytest.fixture
def log_lines() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskPhones())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.security.masking")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


@pytest.mark.parametrize(
    "written",
    [
        "０１０９８７６５４３２",  # full-width
        "０１０－９８７６－５４３２",  # full-width, full-width hyphens
        "＋８２ １０ ９８７６ ５４３２",  # international, full-width
        "٠١٠٩٨٧٦٥٤٣٢",  # Arabic-Indic digits
        "010９８７６5432",  # mixed
        "010‐9876‐5432",  # Unicode hyphens
    ],
)
def test_a_webhook_number_in_unicode_digits_is_masked_in_the_log_line(
    log_lines: tuple[logging.Logger, io.StringIO], written: str
) -> None:
    # Given a webhook body with the number as the carrier sent it
    logger, stream = log_lines
    body = '{"recipientNo": "' + written + '", "resultCode": "1000"}'

    # When it is logged in the message, as an argument, as an extra and in an exception
    try:
        raise ValueError(f"no recipient for {written}")
    except ValueError:
        logger.exception("webhook for an unknown message: %s", body, extra={"payload": body})

    # Then the line shows the number masked, with none of its middle digits in any script
    line = orjson.loads(stream.getvalue())
    for field in ("message", "payload", "exc"):
        assert "010-****-5432" in line[field], (field, line[field])
        assert written not in line[field]
    middle = {"９８７６", "٩٨٧٦", "9876", "８７６"}
    assert not any(digits in stream.getvalue() for digits in middle)


def test_text_around_a_masked_number_is_kept_as_written() -> None:
    # Given text in Korean and full-width letters around a full-width number, and digits that
    # are no phone number, When it is masked, Then only the number changes
    assert (
        mask_phones("수신번호 ０１０９８７６５４３２ 실패（코드 ４２）")
        == "수신번호 010-****-5432 실패（코드 ４２）"
    )
