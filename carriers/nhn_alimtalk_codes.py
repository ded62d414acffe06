"""NHN Cloud KakaoTalk Bizmessage (AlimTalk) codes, and what each means for balsong.

Source: ``TOAST-DOCS/Alimtalk`` ``en/error-code.md``. Two families:

- *API response codes* (``header.resultCode``, integers): the whole request's fate. The same
  codes appear per recipient in ``message.sendResults[].resultCode`` when one recipient is
  refused at submission (an invalid number, a template parameter that does not match).
- *Delivery result codes* (``resultCode`` of the list and result-update APIs, strings): Kakao's
  final word on one message; ``"1000"`` is the only success.

Only the codes a send, query or template lookup can meet are listed; the guide's template
registration, image, group and FriendTalk codes are left out.
"""

from __future__ import annotations

from typing import Final

#: API response codes -> the guide's "result code message".
API_CODES: Final[dict[int, str]] = {
    0: "Success",
    4: "Parameter verification failed",
    -1000: "Invalid appKey",
    -1001: "Invalid secretKey",
    -1002: "Invalid SMS appkey",
    -1003: "Invalid SMS sender number",
    -1005: "The same 'X-NC-API-IDEMPOTENCY-KEY' was used within the last 10 minute.",
    -1006: "Plus friend don't have senderKey.",
    -1014: "Not active status plus friend.",
    -1016: "It is not found any messages responding with that requestId or recipientSeq.",
    -1027: "The sender is blocked status.",
    -1028: "Blacklist can't use more than 14 characters in template value.",
    -1031: "All of receivers are failed to send.",
    -2000: "Specified field value is too long",
    -2001: "Specified field value is empty",
    -2002: "Specified field value is NULL",
    -2003: "Specified field value is less than the minimum",
    -2004: "Specified field value is longer than the maximum length",
    -2005: "Specified field value is not within a limited range",
    -2017: "Not exist plus friend.",
    -2019: "The content that is replaced by the template parameters can not exceed 1,300 characters.",
    -2025: "You can not send messages on past dates.",
    -2027: "The 'requestDate' has invalid format.",
    -2028: "The `requestId` is invalid",
    -3002: "Field is not valid.",
    -3003: "Template does not exist.",
    -3004: "Please check template parameter.",
    -3005: "Please check template status.",
    -3010: "The contents do not match the template.",
    -3048: "The template parameter's length can not exceed 1300 characters.",
    -3049: "The template parameter is not matched to template.",
    -4000: "Invalid parameter",
    -4003: "Search is possible within 31 days.",
    -4004: "Not exist appkey.",
    -4005: "Appkey is disabled.",
    -4017: "You can not search the messages before 90 days.",
    -4019: "Invalid recipient number.",
    -4103: "RequestId or startRequestDate/endRequestDate is invalid.",
    -4200: "Resend Message is invalid.",
    -5000: "RecipientNo is invalid.",
    -7000: "Vender request API is failed.",
    -8008: "The content has banned word.",
    -9996: "Only application/json Content-type is supported.",
    -9997: "Client Error.",
    -9998: "Not exist API",
    -9999: "System error.",
}

#: API codes of a passing provider fault: nothing was accepted and the same request (or
#: recipient) may be sent again. Every other non-zero API code is a refusal for good.
TRANSIENT_API_CODES: Final[frozenset[int]] = frozenset({-9999, -7000})

#: "If a request is made with the same key for 10 minutes, the request will be failed": an
#: earlier request with this batch's idempotency key reached the provider. Not a refusal of the
#: recipients: what became of them is learnt by lookup, never by sending again.
IDEMPOTENCY_KEY_REUSED: Final = -1005
#: "All of receivers are failed to send": every recipient was refused; ``sendResults`` says why.
ALL_RECIPIENTS_FAILED: Final = -1031
#: The template code is unknown to the sender key.
TEMPLATE_NOT_FOUND: Final = -3003
#: The template exists but is not approved (requested, under review or rejected).
TEMPLATE_NOT_APPROVED: Final = -3005
#: A recipient's ``templateParameter`` does not fill the template's variables.
TEMPLATE_PARAMETER_MISMATCH: Final = -3049
#: The recipient number is not valid.
INVALID_RECIPIENT: Final = -5000

#: The one delivery result code that means "delivered to the KakaoTalk user".
DELIVERED: Final = "1000"
#: The message list API's result filter (``resultCode`` parameter): success and failure.
RESULT_FILTER_DELIVERED: Final = "MRC01"
RESULT_FILTER_FAILED: Final = "MRC02"
#: Every code a result may carry that means "delivered": the result code, and the filter's name
#: for it, which a webhook hook may carry in its ``resultCode`` instead.
DELIVERED_CODES: Final[frozenset[str]] = frozenset({DELIVERED, RESULT_FILTER_DELIVERED})
#: "Not a KakaoTalk user": the number has no KakaoTalk account (fall back to SMS/LMS).
NOT_KAKAO_USER: Final = "3019"
#: The user blocked AlimTalk messages (fall back to SMS/LMS).
USER_BLOCKED: Final = "3020"
#: "Message sent but not confirmed (success uncertain, stored encrypted on server and can be
#: received within 3 days)": not final; the message is treated as still in flight.
UNCONFIRMED: Final = "3005"

#: Delivery result codes -> message.
RESULT_CODES: Final[dict[str, str]] = {
    "1000": "Success",
    "1001": "Request Body is not in JSON format",
    "1002": "Invalid hub partner key",
    "1003": "Invalid outgoing profile key",
    "1004": "Cannot find name from the Request Body (JSON)",
    "1006": "Deleted outgoing profile",
    "1007": "Blocked outgoing profile",
    "1011": "Contract information not found",
    "1012": "Request the user key of invalid format",
    "1013": "Invalid app connection",
    "1014": "Invalid business registration number",
    "1015": "Invalid app user id request",
    "1016": "Business registration number mismatch",
    "1020": "The phone number or app user ID is invalid or missing",
    "1021": "Blocked KakaoTalk channel",
    "1022": "Closed KakaoTalk channel",
    "1023": "Deleted KakaoTalk channel",
    "1024": "KakaoTalk channel pending deletion",
    "1025": "Message delivery failure due to channel sanction status",
    "1027": "Message delivery failure due to channel message sanction status",
    "1030": "Invalid parameter request",
    "2001": "Message could not be sent (an unexpected error occurred)",
    "2003": "Message transmission failure (KakaoTalk channel not added on the test server)",
    "3000": "An unexpected error occurred",
    "3005": "Message sent but not confirmed (success uncertain)",
    "3006": "Message delivery failed due to internal system error",
    "3008": "Phone number error",
    "3010": "An unexpected error occurred",
    "3011": "Message does not exist",
    "3012": "Kakao communication failure",
    "3013": "Message is empty",
    "3014": "Message length limit error",
    "3015": "Cannot find template",
    "3016": "Message content does not match template",
    "3018": "Unable to send message (not an active KakaoTalk user)",
    "3019": "Unable to send message: not a KakaoTalk user",
    "3020": "Unable to send message: AlimTalk messages blocked",
    "3021": "Unable to send message: KakaoTalk minimum version not supported",
    "3022": "Not available for sending at this hour",
    "3025": "Variable character limit exceeded",
    "3027": "Message buttons/quick reply links do not match the template",
    "4000": "Cannot find message delivery result",
    "4001": "Unknown message status",
    "4132": "Template variable mismatch",
    "4133": "Stopped template",
    "4134": "Changed template",
    "4143": "Expired request",
    "9998": "System problem (service not currently provided)",
    "9999": "System problem (unknown error)",
}

#: ``messageStatus`` of the list and result-update APIs. "COMPLETED -> successful, FAILED ->
#: failed, CANCEL -> canceled"; anything else (``READY`` ...) is a message still in flight.
MESSAGE_COMPLETED: Final = "COMPLETED"
MESSAGE_FAILED: Final = "FAILED"
MESSAGE_CANCELLED: Final = "CANCEL"
MESSAGE_READY: Final = "READY"

#: Template status codes (``TSC03`` is the only one that can be sent).
TEMPLATE_STATUS_NAMES: Final[dict[str, str]] = {
    "TSC01": "Requested",
    "TSC02": "Reviewing",
    "TSC03": "Approved",
    "TSC04": "Rejected",
}
TEMPLATE_APPROVED: Final = "TSC03"


def api_message(code: int) -> str:
    """The published message of an API response code."""
    return API_CODES.get(code, "Unknown result code")


def result_message(code: str) -> str:
    """The published meaning of a delivery result code."""
    return RESULT_CODES.get(code, "Unknown result code")
