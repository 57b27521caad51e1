"""The formats submitters' systems speak, in and out: pure functions, no Kafka.

In: ``detect(content_type, raw)`` says which format a record is in; ``parse_837`` (X12 837P / 837I),
``parse_hl7`` (HL7 v2 ORM^O01, OML^O21) and ``parse_fhir`` (FHIR R4 Claim, ServiceRequest, Bundle) turn one
record into many events of the project's schemas, each with the positions of its fields in the record, or a
failure with where it stopped (never an exception).

Out: the answers in the submitter's format, built from the decision records and the positions:
``build_999`` and ``build_277ca`` for an 837 interchange, ``build_hl7_response`` (ACK or ORL^O22) for HL7,
``build_fhir_response`` (ClaimResponse or OperationOutcome) for FHIR. ``validate_x12`` runs pyx12's full
implementation-guide validation, off the hot path.

Whole documents: ``read_document`` reads one in any of the formats into ``(kind, event)`` pairs and ``answer``
builds all its answers from their decision records (``documents.py``: ``processor check`` uses it). Kafka
records: ``read_record`` reads one input record by its ``content-type`` header or first bytes into events
with deterministic places, and ``ReadRecord.responses`` builds the records of the ``responses`` topic, with
control numbers from the record's partition and offset (``records.py``: the worker uses it).

Layer: above the engine (the answer codes come from its decision records), below routing.
"""

from processor.formats.detect import Format, detect
from processor.formats.documents import Answer, ControlNumbers, Document, answer, read_document
from processor.formats.fhir import FhirEntry, ParsedFhir, build_fhir_response, parse_fhir
from processor.formats.hl7v2 import Hl7Message, Hl7Order, Hl7Position, ParsedHl7, build_hl7_response, parse_hl7
from processor.formats.positions import position_of
from processor.formats.records import ReadRecord, RecordEvent, ResponseRecord, control_numbers, read_record
from processor.formats.x12 import X12Position
from processor.formats.x12_837 import Claim837, Parsed837, parse_837
from processor.formats.x12_responses import build_277ca, build_999
from processor.formats.x12_validation import X12Problem, validate_x12

__all__ = [
    "Answer", "Claim837", "ControlNumbers", "Document", "FhirEntry", "Format", "Hl7Message", "Hl7Order",
    "Hl7Position", "Parsed837", "ParsedFhir", "ParsedHl7", "ReadRecord", "RecordEvent", "ResponseRecord",
    "X12Position", "X12Problem", "answer", "build_277ca", "build_999", "build_fhir_response", "build_hl7_response",
    "control_numbers", "detect", "parse_837", "parse_fhir", "parse_hl7", "position_of", "read_document",
    "read_record", "validate_x12",
]  # fmt: skip
