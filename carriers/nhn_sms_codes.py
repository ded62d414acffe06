"""NHN Cloud Notification SMS result codes, and what each means for balsong.

Sources: ``TOAST-DOCS/SMS`` ``en/error-code.md`` and ``ko/error-code.md`` (the Korean table is the
more complete one: it adds -1005, -1007, -1008, -2015, -8000, -9995). Three families:

- *API response codes* (``header.resultCode``, integers): the whole request's fate. The same
  codes appear per recipient in ``sendResultList[].resultCode`` when one recipient is refused.
- *Result codes of receiving* (``resultCode`` of the list/query APIs, strings): the final
  delivery result from the telecom provider; ``"1000"`` is the only success.
- *Message status* (``msgStatus``): where a message is in the provider's pipeline.
"""

from __future__ import annotations

from typing import Final

#: API response codes (header level, or per recipient at submission) -> message.
API_CODES: Final[dict[int, str]] = {
    0: "Successful",
    4: "Parameter validation failed",
    -1000: "Invalid appkey",
    -1001: "Unavailable appkey",
    -1002: "Closed appkey",
    -1003: "Member not included in the project",
    -1004: "Not allowed IP",
    -1005: "Invalid search condition",
    -1006: "Invalid delivery message format (messageType)",
    -1007: "Invalid member",
    -1008: "Blocked project",
    -2000: "Invalid date format",
    -2001: "Recipient is missing",
    -2006: "Delivery type in template setting is not consistent with requested type",
    -2008: "Request ID (requestId) is invalid",
    -2011: "Required query parameters are missing (requestId or startRequestDate, endRequestDate)",
    -2012: "Detailed query parameter is invalid (requestId or mtPr)",
    -2014: "Title or body is missing",
    -2015: "Title or body exceeds the maximum length",
    -2016: "The number of recipients is over 1,000",
    -2018: "Recipient number is missing",
    -2019: "Recipient number is invalid",
    -2021: "System error (failed in saving queue)",
    -2022: "Request date and time is set earlier than the current time",
    -2023: "Title or body includes characters that are not allowed (e.g. emojis)",
    -2024: "International delivery is sent with LMS/MMS",
    -2100: "Template ID is missing",
    -2101: "Already-registered Template ID",
    -2102: "Name of template is missing",
    -2103: "Sender number is missing",
    -2104: "Delivery type is missing (0: sms, 1: mms)",
    -2105: "Body is missing",
    -2106: "Use-or-not (useYn) is invalid",
    -2107: "Invalid template ID (to modify/delete)",
    -2108: "Category ID is missing",
    -2109: "Template ID exceeds 50 characters",
    -2110: "Template is unavailable",
    -2111: "Invalid template parameter",
    -2112: "Exceeded the maximum available number of templates for registration (Max: 1000)",
    -2114: "Title is empty",
    -2115: "Title exceeds 120 characters",
    -2116: "Body length exceeds 255 characters, for SMS delivery",
    -2117: "Body length exceeds 4000 characters, for LMS/MMS delivery",
    -2200: "Invalid category parameter (to register)",
    -2206: "Category does not exist",
    -2312: "Sender number is missing or unregistered",
    -2313: "Blocked sender number",
    -4000: "Query range is more than a month",
    -6001: "Call-reject number",
    -8000: "Authentication body lacks the authentication words",
    -9995: "Invalid API version",
    -9996: "Invalid contentType. Only application/JSON",
    -9997: "Invalid JSON format",
    -9998: "Unavailable API",
    -9999: "System error (unexpected error)",
}

#: API codes that describe a passing provider fault: nothing was accepted and the same request
#: (or recipient) may be sent again. Every other non-zero API code is a refusal for good.
TRANSIENT_API_CODES: Final[frozenset[int]] = frozenset({-9999, -2021})

#: Template registration answers that ``carriers.nhn_sms`` handles itself.
TEMPLATE_ALREADY_REGISTERED: Final = -2101
TEMPLATE_LIMIT_REACHED: Final = -2112
TEMPLATE_MISSING: Final[frozenset[int]] = frozenset({-2107, -2110})

#: The one result code of receiving that means "delivered to the handset".
DELIVERED_CODES: Final[frozenset[str]] = frozenset({"1000", "MTR1"})

#: Final results that a later attempt may well turn into a delivery (busy server, handset off or
#: full, temporary device or service issues): the recipient is sent again, not failed.
TRANSIENT_RESULT_CODES: Final[frozenset[str]] = frozenset({"1001", "2003", "2004", "2007", "3004", "3005"})

#: Result codes of receiving (final delivery results) -> message. All but 1000 are failures.
RESULT_CODES: Final[dict[str, str]] = {
    "1000": "Successful",
    "1001": "Server busy",
    "1002": "Error in recipient number format",
    "1003": "Error in reply number format",
    "1004": "Spam",
    "1005": "Available usage exceeded",
    "1019": "TTL exceeded",
    "1020": "Charset conversion error",
    "2000": "Delivery time exceeded",
    "2001": "Delivery failed (mobile network)",
    "2002": "Delivery failed (mobile network -> device)",
    "2003": "Device power off",
    "2004": "Device message buffer full",
    "2005": "Grey area",
    "2006": "Message deleted",
    "2007": "Temporary device issue",
    "3000": "Unavailable to transfer",
    "3001": "No subscriber available",
    "3002": "Adult authentication failed",
    "3003": "Error of recipient number type",
    "3004": "Temporary service suspension on device",
    "3005": "Device call processing status",
    "3006": "Incoming call denied",
    "3007": "Phone unavailable to receive callback URL",
    "3008": "Other device issues",
    "3009": "Message format error",
    "3010": "Device not supporting MMS",
    "3011": "Server error",
    "3012": "Spam",
    "3013": "Service rejected",
    "3014": "Others",
    "3015": "No transfer route available",
    "3016": "Size restriction failed for attached file",
    "3017": "Number format error (sender number falsification prevention)",
    "3018": "Personal mobile number subscribed to sender number falsification prevention",
    "3019": "Sender number not pre-registered",
    "E911": "No attached file extension",
    "E913": "Attached file size is 0",
    "E915": "Duplicate message",
    "E919": "Resending prohibited while delivery is restricted",
    "E999": "Other errors",
    "MTR1": "Successful",
    "MTR2": "Failed",
}

#: ``msgStatus`` values of the list/query APIs.
MSG_STATUS_FAILED: Final = "0"
MSG_STATUS_REQUESTING: Final = "1"
MSG_STATUS_PROCESSING: Final = "2"
#: Handed to the telecom provider; ``resultCode`` then tells delivered from failed.
MSG_STATUS_COMPLETED: Final = "3"
MSG_STATUS_CANCELLED: Final = "4"
MSG_STATUS_DUPLICATE: Final = "5"

MSG_STATUS_NAMES: Final[dict[str, str]] = {
    MSG_STATUS_FAILED: "failed",
    MSG_STATUS_REQUESTING: "requesting",
    MSG_STATUS_PROCESSING: "processing",
    MSG_STATUS_COMPLETED: "successful",
    MSG_STATUS_CANCELLED: "delivery cancelled",
    MSG_STATUS_DUPLICATE: "duplicate delivery",
}


def api_message(code: int) -> str:
    """The published message of an API response code."""
    return API_CODES.get(code, "Unknown result code")


def result_message(code: str) -> str:
    """The published message of a result code of receiving."""
    return RESULT_CODES.get(code, "Unknown result code")
