"""Every reason code a recipient can end with, in Korean and English, with what to do about it.

A recipient that is not delivered carries a ``reason_code`` (API, exports, callbacks, the
console) and a ``reason_text`` (the provider's message, or balsong's). The codes are of two kinds:

- **balsong's own** (`OWN_REASONS`): a number that is no number, a variable missing, an
  opted-out number, a retry deadline passed, a cancelled job, a report that never came ...
- **the providers'**, namespaced ``carrier_<code>`` (`engine.lifecycle.results.reason_code`): the
  NHN Cloud SMS and KakaoTalk AlimTalk codes the adapters map (`carriers.nhn_sms_codes`,
  `carriers.nhn_alimtalk_codes`), whose English text is the provider's published message and
  whose Korean text is the provider's Korean guide's (SMS) or balsong's translation (AlimTalk).
  The two providers share some numbers (``carrier_3005``); the recipient's channel tells which.

docs/api.md's tables of reason codes are generated from this module (``python -m
api.reference_doc --write``), and tests/unit/test_api_reference.py holds it complete: every code
the code base can report has an entry here.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from carriers import nhn_alimtalk_codes as kakao
from carriers import nhn_sms_codes as sms
from engine.intake.compliance import OPTED_OUT
from engine.intake.reservations import MISSED_REASON
from engine.lifecycle.report_deadline import NO_REPORT_REASON
from engine.lifecycle.results import CANCELLED_REASON, EXPIRED_REASON
from engine.lifecycle.statuses import RecipientStatus


class Reason(NamedTuple):
    """One reason code and what it means."""

    #: As reported: ``opted_out``, ``carrier_3015`` ...
    code: str
    #: Korean text, for operators and the console.
    ko: str
    #: English text.
    en: str
    #: What the caller or operator should do about it.
    action: str
    #: The recipient statuses the code comes with.
    statuses: tuple[RecipientStatus, ...]


_FAILED = (RecipientStatus.FAILED,)
_NEVER_SENT = "Never sent, never charged. "
_FIX_NUMBER = _NEVER_SENT + "Correct the number in your data before sending to it again."

#: balsong's own reason codes.
OWN_REASONS: Final[tuple[Reason, ...]] = (
    Reason(
        "invalid_phone",
        "전화번호가 아님",
        "The phone value is not a phone number (not a string)",
        _FIX_NUMBER + ' Send numbers as strings such as "010-1234-5678".',
        _FAILED,
    ),
    Reason("empty", "전화번호 없음", "No phone number was given", _FIX_NUMBER, _FAILED),
    Reason(
        "invalid_character",
        "전화번호에 허용되지 않는 문자",
        "The number holds characters no phone number has",
        _FIX_NUMBER + " Digits, spaces, '-', '.', '(' , ')' and a leading '+' are accepted.",
        _FAILED,
    ),
    Reason(
        "not_korean",
        "국내 번호 아님",
        "Only Korean numbers (+82) are accepted",
        _NEVER_SENT + "balsong's carriers deliver to Korean numbers only; reach this recipient otherwise.",
        _FAILED,
    ),
    Reason(
        "unknown_prefix",
        "알 수 없는 번호 앞자리",
        "The number does not start like a Korean mobile, area, internet or personal number",
        _FIX_NUMBER,
        _FAILED,
    ),
    Reason("too_short", "전화번호 자릿수 부족", "The number has too few digits", _FIX_NUMBER, _FAILED),
    Reason("too_long", "전화번호 자릿수 초과", "The number has too many digits", _FIX_NUMBER, _FAILED),
    Reason(
        "sender_only",
        "수신할 수 없는 번호(대표번호 등)",
        "A number that can send but not receive messages (15xx, 16xx, 18xx representative numbers)",
        _NEVER_SENT + "Use the person's mobile number.",
        _FAILED,
    ),
    Reason(
        "missing_variable",
        "템플릿 변수 누락",
        "A variable of the template or body is missing from the recipient's variables",
        _NEVER_SENT + "Give every #{name} of the body or template in the recipient's variables, then resend.",
        _FAILED,
    ),
    Reason(
        "content_too_long",
        "메시지 길이 초과",
        "The message is too long once filled in (LMS 2,000 bytes, AlimTalk 1,000 characters)",
        _NEVER_SENT + "Shorten the text or the recipient's variables, then resend. On a KakaoTalk job's"
        " fallback row: the fallback text was too long for SMS/LMS.",
        _FAILED,
    ),
    Reason(
        "unencodable_text",
        "문자로 보낼 수 없는 글자(이모지 등)",
        "The text holds a character EUC-KR cannot write (an emoji, some Hanja): SMS/LMS cannot carry it",
        _NEVER_SENT + "Remove or replace the character (the reason text says where), then resend.",
        _FAILED,
    ),
    Reason(
        OPTED_OUT,
        "광고 수신 거부 번호",
        "The number opted out of this sender's advertising",
        _NEVER_SENT + "Required by law: do not send it advertising. Transactional messages are not affected.",
        _FAILED,
    ),
    Reason(
        EXPIRED_REASON,
        "재시도 기한 만료",
        "Transient failures went on past the channel's retry deadline (48 h by default)",
        "The carrier kept refusing for now (handset off, busy network ...); refunded at settlement."
        " Resend later if the message still matters.",
        (RecipientStatus.EXPIRED,),
    ),
    Reason(
        CANCELLED_REASON,
        "작업 취소로 미발송",
        "Not sent: the job was cancelled",
        "Nothing to do; refunded at settlement. Submit a new job to send it after all.",
        (RecipientStatus.CANCELLED,),
    ),
    Reason(
        MISSED_REASON,
        "예약 시각 경과로 미발송",
        "Not sent: the reservation came due while balsong was down, past the grace period",
        "Nothing was sent late on purpose; refunded at settlement. Submit it again if it still matters.",
        (RecipientStatus.CANCELLED,),
    ),
    Reason(
        NO_REPORT_REASON,
        "결과 미수신",
        "The carrier accepted the message but gave no final result by the report deadline (72 h)",
        "The message may well have arrived: not a failure, not refunded (the carrier charged it), not"
        " resent by resend. Ask the provider about it only if it matters.",
        (RecipientStatus.UNKNOWN,),
    ),
)

# -- the providers' codes -----------------------------------------------------------------------

#: What to do, by kind of provider code.
_ACTIONS: Final[dict[str, str]] = {
    "account": "The operator's carrier account or balsong's settings are wrong (app key, secret key, sender"
    " key, allowed IPs, a closed project): fix them (docs/configuration.md) or in the NHN Cloud"
    " console, then resend the failures.",
    "request": "The provider refused a request balsong built: a balsong bug or an API change. Report it with"
    " the job id; resend once fixed.",
    "number": "The number is wrong or not in service: correct it in your data; do not resend it as is.",
    "content": "The message is not acceptable as written (length, characters, parameters): fix the body or"
    " the variables, then resend.",
    "template": "The AlimTalk template is unknown, not approved, stopped or changed: check it in the"
    " KakaoTalk Bizmessage console and send with an approved template code, then resend.",
    "sender": "The sender number or KakaoTalk channel is unregistered, blocked or sanctioned: register or"
    " restore it with the provider (sender numbers must be pre-registered by law), then resend.",
    "refused": "The recipient or the network refused the message (spam filter, call barring, opt-out):"
    " do not resend; respect the refusal.",
    "transient": "A passing condition (handset off or full, busy network, provider fault): balsong sends it"
    " again by itself until the channel's retry deadline; it ends `expired` if it never goes.",
    "handset": "The handset could not take the message: resend later if it still matters; many of them may"
    " mean a wrong number.",
    "provider": "A fault at the provider or the telecom network: resend the failures later; many of them at"
    " once: check the provider's status and the carrier error metrics.",
    "kakao_user": "The number cannot get AlimTalk (no KakaoTalk, AlimTalk blocked, an old app): give the job"
    " an SMS/LMS fallback so these recipients get a text instead.",
    "duplicate": "The provider dropped a repeated message: the first copy went; nothing to do.",
    "hours": "The provider does not send at this hour: resend within the allowed hours.",
}

#: NHN Cloud SMS API response codes: (Korean text, kind). The Korean text is the provider's
#: (TOAST-DOCS/SMS ko/error-code.md).
_SMS_API: Final[dict[int, tuple[str, str]]] = {
    4: ("파라미터 유효성 검증 실패", "request"),
    -1000: ("유효하지 않은 앱키", "account"),
    -1001: ("존재하지 않는 앱키", "account"),
    -1002: ("사용 종료된 앱키", "account"),
    -1003: ("프로젝트에 포함되지 않는 멤버", "account"),
    -1004: ("허용되지 않는 IP", "account"),
    -1005: ("유효하지 않는 검색 조건", "request"),
    -1006: ("유효하지 않는 발송 메시지(messageType) 유형", "request"),
    -1007: ("유효하지 않은 멤버", "account"),
    -1008: ("차단된 프로젝트", "account"),
    -2000: ("유효하지 않는 날짜 형식", "request"),
    -2001: ("수신자가 비어 있는 경우", "request"),
    -2006: ("템플릿에 설정된 발송 유형과 요청온 발송 유형이 맞지 않는 경우", "request"),
    -2008: ("요청 ID(requestId)가 잘못된 경우", "request"),
    -2011: ("필수 조회 파라미터가 비어 있는 경우", "request"),
    -2012: ("상세 조회 파라미터가 잘못된 경우", "request"),
    -2014: ("제목 또는 본문이 비어 있는 경우", "content"),
    -2015: ("제목 또는 본문이 초과된 경우", "content"),
    -2016: ("수신자가 1,000명이 넘어간 경우", "request"),
    -2018: ("수신자 번호가 비어 있는 경우", "number"),
    -2019: ("수신자 번호가 유효하지 않는 경우", "number"),
    -2021: ("시스템 오류(큐 저장 실패)", "transient"),
    -2022: ("요청 일시를 현재 시간보다 이전으로 설정한 경우", "request"),
    -2023: ("제목 또는 본문에 허용되지 않는 문자(Emoji 등)가 포함된 경우", "content"),
    -2024: ("LMS/MMS로 국제 발송을 전송하는 경우", "number"),
    -2100: ("템플릿 ID가 비어 있는 경우", "request"),
    -2101: ("이미 등록된 템플릿 ID", "request"),
    -2102: ("템플릿 이름이 비어 있는 경우", "request"),
    -2103: ("발신 번호가 비어 있는 경우", "sender"),
    -2104: ("발송 유형이 비어 있는 경우(0: sms, 1: mms)", "request"),
    -2105: ("본문이 비어 있는 경우", "content"),
    -2106: ("사용 여부가 잘못된 경우", "request"),
    -2107: ("유효하지 않는 템플릿 ID(수정/삭제 시)", "request"),
    -2108: ("카테고리 ID가 비어 있는 경우", "request"),
    -2109: ("템플릿 ID가 50글자를 초과하는 경우", "request"),
    -2110: ("템플릿이 존재하지 않는 경우", "request"),
    -2111: ("유효하지 않는 템플릿 파라미터인 경우", "request"),
    -2112: ("최대 등록 가능한 템플릿 갯수를 초과한 경우(최대: 1000)", "account"),
    -2114: ("제목이 비어있는 경우", "content"),
    -2115: ("제목이 120글자를 초과하는 경우", "content"),
    -2116: ("발송 유형이 SMS일때, 본문 길이가 255글자를 초과하는 경우", "content"),
    -2117: ("발송 유형이 LMS/MMS일때, 본문 길이가 4000글자를 초과하는 경우", "content"),
    -2200: ("유효하지 않는 카테고리 파라미터(등록 시)", "request"),
    -2206: ("존재하지 않은 카테고리인 경우", "request"),
    -2312: ("발신 번호가 비어있거나 미등록 상태", "sender"),
    -2313: ("차단된 발신 번호", "sender"),
    -4000: ("조회 범위가 한달이 넘어간 경우", "request"),
    -6001: ("수신 거부된 번호", "refused"),
    -8000: ("인증 발송에 인증 문구가 포함되지 않은 경우", "content"),
    -9995: ("유효하지 않는 API 버전", "request"),
    -9996: ("유효하지 않는 contentType. Only application/JSON", "request"),
    -9997: ("유효하지 않는 JSON 형식", "request"),
    -9998: ("존재하지 않는 API", "request"),
    -9999: ("시스템 오류(예기치 못한 오류)", "transient"),
}

#: NHN Cloud SMS result codes of receiving: (Korean text, kind); the provider's Korean text.
_SMS_RESULT: Final[dict[str, tuple[str, str]]] = {
    "1001": ("서버 혼잡(Server Busy)", "transient"),
    "1002": ("수신 번호 형식 오류", "number"),
    "1003": ("회신 번호 형식 오류", "sender"),
    "1004": ("스팸", "refused"),
    "1005": ("사용 한도 초과", "account"),
    "1019": ("TTL 초과", "handset"),
    "1020": ("문자셋 변환 오류", "content"),
    "2000": ("전송 시간 초과", "handset"),
    "2001": ("전송 실패 (무선망단)", "provider"),
    "2002": ("전송 실패 (무선망 -> 단말기단)", "handset"),
    "2003": ("단말기 전원 꺼짐", "transient"),
    "2004": ("통신사와 단말 사이에 메시지 버퍼가 가득 차서, 전달 불가 상태", "transient"),
    "2005": ("음영 지역", "handset"),
    "2006": ("메시지 삭제됨", "handset"),
    "2007": ("일시적인 단말 문제", "transient"),
    "3000": ("전송할 수 없음", "provider"),
    "3001": ("가입자 없음", "number"),
    "3002": ("성인 인증 실패", "refused"),
    "3003": ("수신 번호 형식 오류 또는 결번(없는 번호)", "number"),
    "3004": ("단말기 서비스 일시 정지", "transient"),
    "3005": ("단말기 호 처리 (Call processing) 상태, 단말에 도달하지 못함", "transient"),
    "3006": ("착신 거절", "refused"),
    "3007": ("콜백 URL을 받을 수 없는 폰", "handset"),
    "3008": ("기타 단말기 문제", "handset"),
    "3009": ("메시지 형식 오류", "content"),
    "3010": ("MMS 미지원 단말", "handset"),
    "3011": ("서버 오류", "provider"),
    "3012": ("스팸", "refused"),
    "3013": ("서비스 거부", "refused"),
    "3014": ("기타", "provider"),
    "3015": ("전송 경로 없음", "provider"),
    "3016": ("첨부 파일 크기 제한 실패", "content"),
    "3017": ("발신 번호(=회신 번호) 변작 방지 서비스에 의거한 번호 형식 오류", "sender"),
    "3018": ("발신 번호(=회신 번호) 변작 방지 서비스에 가입된 휴대폰 개인 가입자 번호", "sender"),
    "3019": ("발신 번호(=회신 번호) 번호 사전 등록제를 통해 등록되지 않은 번호", "sender"),
    "E911": ("첨부파일 확장자가 없는 경우", "content"),
    "E913": ("첨부파일 크기가 0인 경우", "content"),
    "E915": ("중복메시지", "duplicate"),
    "E919": ("발송 제한 시간인 경우, 메시지 재발송 처리가 금지된 경우", "hours"),
    "E999": ("기타 오류", "provider"),
    "MTR2": ("실패", "provider"),
}

#: NHN Cloud SMS ``msgStatus`` values that end a message without a result code: the reason is
#: ``carrier_msgStatus:<value>``.
_SMS_STATUS: Final[dict[str, tuple[str, str, str]]] = {
    sms.MSG_STATUS_FAILED: ("발송 실패", "Failed at the provider, without a result code", "provider"),
    sms.MSG_STATUS_CANCELLED: ("발송 취소", "Delivery cancelled at the provider", "provider"),
    sms.MSG_STATUS_DUPLICATE: ("중복 발송", "Duplicate delivery, dropped by the provider", "duplicate"),
}

#: KakaoTalk Bizmessage API response codes: (Korean text, kind); balsong's translation.
_KAKAO_API: Final[dict[int, tuple[str, str]]] = {
    4: ("파라미터 유효성 검증 실패", "request"),
    -1000: ("유효하지 않은 앱키", "account"),
    -1001: ("유효하지 않은 비밀 키(secretKey)", "account"),
    -1002: ("유효하지 않은 SMS 앱키", "account"),
    -1003: ("유효하지 않은 SMS 발신 번호", "sender"),
    -1006: ("발신 프로필이 발신 키를 가지고 있지 않은 경우", "account"),
    -1014: ("활성 상태가 아닌 발신 프로필", "sender"),
    -1016: ("해당 requestId 또는 recipientSeq의 메시지가 없음", "request"),
    -1027: ("발신 프로필이 차단 상태일 경우", "sender"),
    -1028: ("템플릿 변수 치환 시 14자를 초과하는 부분이 있는 경우(최초 사용자 제한)", "content"),
    -2000: ("특정 필드값이 최대 길이 초과할 경우", "content"),
    -2001: ("특정 필드값이 필수 값이 공백인 경우", "request"),
    -2002: ("특정 필드값이 NULL일 경우", "request"),
    -2003: ("특정 필드값이 최소 길이보다 작을 경우", "request"),
    -2004: ("특정 필드값이 최대 길이보다 클 경우", "content"),
    -2005: ("특정 필드값이 제한된 범위 내의 값이 아닌 경우", "request"),
    -2017: ("존재하지 않는 발신 프로필", "account"),
    -2019: ("템플릿 파라미터로 치환된 내용이 1,300자를 초과", "content"),
    -2025: ("지난 날짜로는 발송할 수 없음", "request"),
    -2027: ("requestDate 형식이 잘못됨", "request"),
    -2028: ("requestId가 유효하지 않음", "request"),
    -3002: ("필드가 유효하지 않음", "request"),
    -3003: ("템플릿이 존재하지 않음", "template"),
    -3004: ("템플릿 파라미터를 확인하세요", "content"),
    -3005: ("템플릿 상태를 확인하세요(승인되지 않음)", "template"),
    -3010: ("내용이 템플릿과 일치하지 않음", "template"),
    -3048: ("템플릿 파라미터 길이는 1,300자를 넘을 수 없음", "content"),
    -3049: ("템플릿 파라미터가 템플릿과 맞지 않음", "content"),
    -4000: ("유효하지 않은 파라미터", "request"),
    -4003: ("조회는 31일 이내만 가능", "request"),
    -4004: ("존재하지 않는 앱키", "account"),
    -4005: ("사용 중지된 앱키", "account"),
    -4017: ("90일 이전의 메시지는 조회할 수 없음", "request"),
    -4019: ("유효하지 않은 수신 번호", "number"),
    -4103: ("requestId 또는 조회 기간이 유효하지 않음", "request"),
    -4200: ("재발송 메시지가 유효하지 않음", "request"),
    -5000: ("유효하지 않은 수신 번호", "number"),
    -7000: ("벤더 요청 API 실패", "transient"),
    -8008: ("금지어가 포함된 내용", "content"),
    -9996: ("application/json Content-type만 지원", "request"),
    -9997: ("클라이언트 오류", "request"),
    -9998: ("존재하지 않는 API", "request"),
    -9999: ("시스템 오류", "transient"),
}

#: KakaoTalk Bizmessage delivery result codes: (Korean text, kind); balsong's translation.
_KAKAO_RESULT: Final[dict[str, tuple[str, str]]] = {
    "1001": ("요청 본문이 JSON 형식이 아님", "request"),
    "1002": ("유효하지 않은 허브 파트너 키", "account"),
    "1003": ("유효하지 않은 발신 프로필 키", "account"),
    "1004": ("요청 본문(JSON)에서 이름을 찾을 수 없음", "request"),
    "1006": ("삭제된 발신 프로필", "sender"),
    "1007": ("차단된 발신 프로필", "sender"),
    "1011": ("계약 정보를 찾을 수 없음", "account"),
    "1012": ("잘못된 형식의 사용자 키 요청", "request"),
    "1013": ("유효하지 않은 앱 연결", "account"),
    "1014": ("유효하지 않은 사업자 등록 번호", "account"),
    "1015": ("유효하지 않은 앱 사용자 ID 요청", "request"),
    "1016": ("사업자 등록 번호 불일치", "account"),
    "1020": ("전화번호 또는 앱 사용자 ID가 잘못되었거나 없음", "number"),
    "1021": ("차단된 카카오톡 채널", "sender"),
    "1022": ("닫힌 카카오톡 채널", "sender"),
    "1023": ("삭제된 카카오톡 채널", "sender"),
    "1024": ("삭제 대기 중인 카카오톡 채널", "sender"),
    "1025": ("채널 제재 상태로 발송 실패", "sender"),
    "1027": ("채널 메시지 제재 상태로 발송 실패", "sender"),
    "1030": ("잘못된 파라미터 요청", "request"),
    "2001": ("메시지를 보낼 수 없음(예기치 않은 오류)", "provider"),
    "2003": ("메시지 전송 실패(테스트 서버에 카카오톡 채널이 추가되지 않음)", "account"),
    "3000": ("예기치 않은 오류", "provider"),
    "3006": ("내부 시스템 오류로 발송 실패", "provider"),
    "3008": ("전화번호 오류", "number"),
    "3010": ("예기치 않은 오류", "provider"),
    "3011": ("메시지가 존재하지 않음", "provider"),
    "3012": ("카카오 통신 실패", "provider"),
    "3013": ("메시지가 비어 있음", "content"),
    "3014": ("메시지 길이 제한 오류", "content"),
    "3015": ("템플릿을 찾을 수 없음", "template"),
    "3016": ("메시지 내용이 템플릿과 일치하지 않음", "template"),
    "3018": ("메시지를 보낼 수 없음(활성 카카오톡 사용자 아님)", "kakao_user"),
    "3019": ("메시지를 보낼 수 없음: 카카오톡 사용자 아님", "kakao_user"),
    "3020": ("메시지를 보낼 수 없음: 알림톡 수신 차단", "kakao_user"),
    "3021": ("메시지를 보낼 수 없음: 카카오톡 최소 버전 미지원", "kakao_user"),
    "3022": ("발송 가능한 시간이 아님", "hours"),
    "3025": ("변수 글자 수 제한 초과", "content"),
    "3027": ("메시지 버튼/바로연결 링크가 템플릿과 일치하지 않음", "template"),
    "4000": ("메시지 발송 결과를 찾을 수 없음", "provider"),
    "4001": ("알 수 없는 메시지 상태", "provider"),
    "4132": ("템플릿 변수 불일치", "content"),
    "4133": ("중지된 템플릿", "template"),
    "4134": ("변경된 템플릿", "template"),
    "4143": ("만료된 요청", "hours"),
    "9998": ("시스템 문제(현재 서비스 제공 안 함)", "provider"),
    "9999": ("시스템 문제(알 수 없는 오류)", "provider"),
}

#: KakaoTalk ``messageStatus`` values that end a message without a result code.
_KAKAO_STATUS: Final[dict[str, tuple[str, str, str]]] = {
    kakao.MESSAGE_FAILED: ("발송 실패", "Failed at the provider, without a result code", "provider"),
    kakao.MESSAGE_CANCELLED: ("발송 취소", "Cancelled at the provider", "provider"),
}

#: AlimTalk API codes no recipient ends with: success; a reused idempotency key (the recipients
#: are looked up, never failed); "all recipients failed" (each carries its own code).
_KAKAO_NOT_FINAL_API = frozenset({0, kakao.IDEMPOTENCY_KEY_REUSED, kakao.ALL_RECIPIENTS_FAILED})
_SMS_STATUSES = (RecipientStatus.FAILED,)
#: A KakaoTalk failure is handed to SMS/LMS when the job has a fallback, and fails otherwise.
_KAKAO_STATUSES = (RecipientStatus.FAILED, RecipientStatus.FALLBACK)


def _carrier(code: object, ko: str, en: str, kind: str, statuses: tuple[RecipientStatus, ...]) -> Reason:
    return Reason(f"carrier_{code}", ko, en, _ACTIONS[kind], statuses)


def sms_reasons() -> list[Reason]:
    """Every NHN Cloud SMS/LMS code a recipient can end with, API codes first."""
    found = [
        _carrier(code, _SMS_API[code][0], sms.API_CODES[code], _SMS_API[code][1], _SMS_STATUSES)
        for code in sms.API_CODES
        if code != 0
    ]
    found += [
        _carrier(code, _SMS_RESULT[code][0], text, _SMS_RESULT[code][1], _SMS_STATUSES)
        for code, text in sms.RESULT_CODES.items()
        if code not in sms.DELIVERED_CODES
    ]
    found += [
        _carrier(f"msgStatus:{status}", ko, en, kind, _SMS_STATUSES)
        for status, (ko, en, kind) in _SMS_STATUS.items()
    ]
    return found


def kakao_reasons() -> list[Reason]:
    """Every KakaoTalk AlimTalk code a recipient can end with, API codes first."""
    found = [
        _carrier(code, _KAKAO_API[code][0], kakao.API_CODES[code], _KAKAO_API[code][1], _KAKAO_STATUSES)
        for code in kakao.API_CODES
        if code not in _KAKAO_NOT_FINAL_API
    ]
    found += [
        _carrier(code, _KAKAO_RESULT[code][0], text, _KAKAO_RESULT[code][1], _KAKAO_STATUSES)
        for code, text in kakao.RESULT_CODES.items()
        if code not in kakao.DELIVERED_CODES and code != kakao.UNCONFIRMED
    ]
    found += [
        _carrier(f"messageStatus:{status}", ko, en, kind, _KAKAO_STATUSES)
        for status, (ko, en, kind) in _KAKAO_STATUS.items()
    ]
    return found


def own_reason(code: str) -> Reason | None:
    """balsong's own reason ``code``, or None."""
    return next((reason for reason in OWN_REASONS if reason.code == code), None)


# -- what to do, in Korean, for the console -------------------------------------------------------


class Advice(NamedTuple):
    """What an operator should do about a reason code, in Korean, and where in the console."""

    #: One sentence for the job page's failure table.
    text: str
    #: What to fix first: ``recipient`` (the number or data), ``sender`` (sender number or
    #: KakaoTalk channel: the 발신번호 page), ``money`` (the 충전 page), ``content``, or None.
    fix: str | None
    #: Whether resending these failures as they are can help (after the fix, if any).
    resend: bool


_FIX_NUMBER_KO = "수신자 번호를 바로잡은 뒤 보내세요. 발송·과금되지 않았습니다."

#: balsong's own codes, in Korean.
_OWN_ADVICE: Final[dict[str, Advice]] = {
    "invalid_phone": Advice('번호를 "010-1234-5678" 같은 문자열로 바로잡은 뒤 보내세요.', "recipient", False),
    "empty": Advice("수신자에게 연락처가 없습니다. " + _FIX_NUMBER_KO, "recipient", False),
    "invalid_character": Advice("번호에 숫자가 아닌 글자가 있습니다. " + _FIX_NUMBER_KO, "recipient", False),
    "not_korean": Advice("국내 번호로만 보낼 수 있습니다. 다른 방법으로 연락하세요.", "recipient", False),
    "unknown_prefix": Advice(
        "번호 앞자리를 확인하세요(맨 앞 0 누락 등). " + _FIX_NUMBER_KO, "recipient", False
    ),
    "too_short": Advice(_FIX_NUMBER_KO, "recipient", False),
    "too_long": Advice(_FIX_NUMBER_KO, "recipient", False),
    "sender_only": Advice("대표번호는 받을 수 없습니다. 휴대폰 번호로 바꿔 보내세요.", "recipient", False),
    "missing_variable": Advice(
        "수신자 변수에 본문·템플릿의 #{변수}를 모두 넣은 뒤 재발송하세요.", "content", True
    ),
    "content_too_long": Advice("본문이나 변수 값을 줄인 뒤 재발송하세요.", "content", True),
    "unencodable_text": Advice("이모지 등 문자로 보낼 수 없는 글자를 빼고 재발송하세요.", "content", True),
    OPTED_OUT: Advice("수신 거부한 번호입니다. 광고를 보내지 마세요(법적 의무).", None, False),
    EXPIRED_REASON: Advice(
        "재시도 기한 안에 전달되지 않았습니다. 여전히 필요하면 나중에 재발송하세요.", None, True
    ),
    CANCELLED_REASON: Advice("작업 취소로 보내지 않았습니다. 필요하면 새로 발송하세요.", None, False),
    MISSED_REASON: Advice("예약 시각이 지나 보내지 않았습니다. 필요하면 새로 발송하세요.", None, False),
    NO_REPORT_REASON: Advice(
        "통신사가 결과를 주지 않았습니다. 도착했을 수 있어 재발송 대상이 아닙니다.", None, False
    ),
}

#: The providers' codes, by kind, in Korean.
_KIND_ADVICE: Final[dict[str, Advice]] = {
    "account": Advice(
        "통신사 계정·설정 문제입니다(앱키, 허용 IP, 사용 한도). 관리자가 고친 뒤 재발송하세요.", None, True
    ),
    "request": Advice(
        "balsong이 만든 요청을 통신사가 거절했습니다. 작업 번호와 함께 문의하세요.", None, True
    ),
    "number": Advice("없는 번호이거나 잘못된 번호입니다. 수신자 번호를 바로잡으세요.", "recipient", False),
    "content": Advice("내용(길이·글자·변수)을 고친 뒤 재발송하세요.", "content", True),
    "template": Advice(
        "알림톡 템플릿이 없거나 승인되지 않았습니다. 승인된 템플릿으로 재발송하세요.", "content", True
    ),
    "sender": Advice(
        "발신번호(또는 카카오톡 채널)가 등록·승인되지 않았거나 차단되었습니다. 등록·승인 후 재발송하세요.",
        "sender",
        True,
    ),
    "refused": Advice("수신자나 통신망이 거부했습니다. 재발송하지 마세요.", None, False),
    "transient": Advice(
        "일시적인 문제로 재시도 기한까지 전달되지 않았습니다. 나중에 재발송하세요.", None, True
    ),
    "handset": Advice(
        "단말기가 받지 못했습니다. 필요하면 나중에 재발송하세요. 많다면 번호 오류일 수 있습니다.", None, True
    ),
    "provider": Advice("통신사·통신망 장애입니다. 잠시 뒤 재발송하세요.", None, True),
    "kakao_user": Advice(
        "알림톡을 받을 수 없는 번호입니다. 문자(SMS/LMS) 대체 발송을 켜고 재발송하세요.", "content", True
    ),
    "duplicate": Advice("중복 메시지라 통신사가 버렸습니다. 처음 보낸 것은 전달되었습니다.", None, False),
    "hours": Advice("통신사 발송 가능 시간이 아닙니다. 허용 시간에 재발송하세요.", None, True),
}


def _kinds() -> dict[str, str]:
    # The two providers share some numbers; SMS's kind wins (the kinds of shared numbers that
    # differ are both "fix something, then resend").
    found: dict[str, str] = {}
    tables: list[dict[Any, tuple[str, str]]] = [_SMS_API, _SMS_RESULT, _KAKAO_API, _KAKAO_RESULT]
    for table in tables:
        for code, (_, kind) in table.items():
            found.setdefault(f"carrier_{code}", kind)
    for status, (_, _, kind) in _SMS_STATUS.items():
        found.setdefault(f"carrier_msgStatus:{status}", kind)
    for status, (_, _, kind) in _KAKAO_STATUS.items():
        found.setdefault(f"carrier_messageStatus:{status}", kind)
    return found


_KIND_BY_CODE: Final[dict[str, str]] = _kinds()


def advice(code: str) -> Advice | None:
    """What to do about reason ``code``, in Korean; None for a code balsong does not know."""
    if code in _OWN_ADVICE:
        return _OWN_ADVICE[code]
    kind = _KIND_BY_CODE.get(code)
    return None if kind is None else _KIND_ADVICE[kind]
