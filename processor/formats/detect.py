"""Which format a record is in: from its content-type header, or else from its first bytes.

The input topics carry the project's own JSON events beside what submitters' systems send as they are:
X12 837 interchanges, HL7 v2 messages and FHIR resources. A producer that knows says so in a
``content-type`` header; a record without one (or with a type this does not know) is recognised by how it
starts: ``ISA`` an X12 interchange, ``MSH`` (or a batch's ``FHS`` / ``BHS``) and a delimiter an HL7 v2
message, a JSON object naming a ``resourceType`` FHIR, any other JSON object the project's own event.
"""

from __future__ import annotations

from enum import StrEnum


class Format(StrEnum):
    """A record's format."""

    JSON = "json"  # the project's own claim and order events (schemas/)
    X12 = "x12"  # an X12 interchange: 837P / 837I
    HL7V2 = "hl7v2"  # HL7 v2 ER7: ORM^O01, OML^O21
    FHIR = "fhir"  # FHIR R4 JSON: Claim, ServiceRequest, Bundle
    UNKNOWN = "unknown"


CONTENT_TYPES = {
    "application/json": Format.JSON,
    "application/edi-x12": Format.X12,
    "application/x12": Format.X12,
    "x-application/hl7-v2+er7": Format.HL7V2,
    "application/hl7-v2+er7": Format.HL7V2,
    "application/hl7-v2": Format.HL7V2,
    "application/fhir+json": Format.FHIR,
    "application/json+fhir": Format.FHIR,
}
_BOM = b"\xef\xbb\xbf"
_SNIFF = 64  # bytes looked at for the start of a record, after leading white space


def detect(content_type: str | None, raw: bytes | None) -> Format:
    """The format of a record: its content type (parameters such as ``charset`` ignored) when it names one
    of ``CONTENT_TYPES``, else what its first bytes say."""
    if content_type:
        known = CONTENT_TYPES.get(content_type.split(";", 1)[0].strip().lower())
        if known is not None:
            return known
    if not raw:
        return Format.UNKNOWN
    start = raw[: _SNIFF + 8].removeprefix(_BOM).lstrip()
    if start.startswith(b"ISA") and len(start) > 3 and not start[3:4].isalnum():
        return Format.X12
    if start[:3] in (b"MSH", b"FHS", b"BHS") and len(start) > 3 and not start[3:4].isalnum():
        return Format.HL7V2
    if start.startswith(b"{"):
        # A FHIR resource names its type; the project's events never carry the key.
        return Format.FHIR if b'"resourceType"' in raw else Format.JSON
    return Format.UNKNOWN


def decode_text(raw: bytes) -> str:
    """The text of an X12 or HL7 v2 record: UTF-8 (X12's extended character set, HL7's usual encoding), else
    Latin-1, which decodes any byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
