"""The code table: what codes exist, when, and with which attributes.

- ``table``    the in-memory table the engine reads (``CodeTable``), built from code-table records
- ``releases`` the default table: the installed ICD-10-CM FY2025 and FY2026 releases
- ``csv_rows`` a documented CSV for CPT, LOINC, HCPCS and payer-internal codes
- ``publish``  writes records to the compacted code-table topic
- ``follower`` reads that topic into a ``CodeTable`` and keeps it current
"""

from processor.code_table.table import CodeTable, CodeVersion, record_key

__all__ = ["CodeTable", "CodeVersion", "record_key"]
