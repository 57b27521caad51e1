"""CMS's Place of Service (POS) code set as code-table records: system ``POS``, each code a version per CMS name,
billable, from its effective date; and one ``@release`` record for the dates of service the list speaks for.

A POS code says where a professional claim's services were rendered (11 office, 21 inpatient hospital, 81
independent laboratory...). The 837P's implementation guide names CMS's code set for it, so HIPAA makes it
the national standard. CMS keeps it and it is public domain.

Where the list comes from: CMS's "Place of Service Code Set" page
(https://www.cms.gov/medicare/coding-billing/place-of-service-codes/code-sets). Each code has a name and a
description, and the description gives the code's effective date where CMS states one ("(Effective January 1,
2003)"). What was read here: HL7's copy of that page (CodeSystem CMSPlaceofServiceCodes in HL7 UTG, CMS version
20240502, published 2025-04-26, 52 codes, with CMS's descriptions), and checked against CMS's own notices:

- 02 was added 2017-01-01 as "Telehealth" and renamed "Telehealth Provided Other than in Patient's Home" on
  2022-01-01, the day 10 "Telehealth Provided in Patient's Home" was added (CR 12427, transmittal 11045; Medicare
  accepted 10 from 2022-04-01, but the code set dates it 2022-01-01). Both names are kept, each a version.
- 22 was "Outpatient Hospital" until CMS renamed it "On Campus-Outpatient Hospital" on 2016-01-01, the day 19
  "Off Campus-Outpatient Hospital" was added (CR 9231, MLN Matters MM9231). Both names are kept.
- 09 from 2006-07-01 (MLN Matters, November 2006); 58 from 2020-01-01 (CR 11353, transmittal 4486); 27 from
  2023-10-01 (CR 13314, transmittal 12411); 66 from 2024-08-01 (transmittal 12779).
- 49 and 57: CMS's page now says "(Effective October 1, 2023)", but copies of it from before 2023 say October
  1, 2003 (49 "effective 10/1/03" in a 2010 copy), and both were billed long before 2023: 2023 is taken for a
  typing error of the page's 2023 update, and 2003-10-01 is used.
- 16 from 2008-01-01 as CMS's page says (a 2013 copy says 4/1/08, Medicare's date, it seems); 17 from 2010-05-01,
  CMS's "final effective date" (CMS let it be used earlier, from a day not established here, so 17 is not
  valid here before 2010-05-01); 18 from 2013-01-01, the first day CMS allowed ("no later than May 1, 2013").

Codes whose description states no date (11, 12, 21-26, 31-34, 41, 42, 50-56, 60-62, 65, 71, 72, 81, 99) are
older than CMS's list online, which does not say since when. They start on ``FIRST_DAY``, 2003-10-16, the last
compliance date of HIPAA's transaction and code set standards (October 16, 2002, extended one year by the
Administrative Simplification Compliance Act for every covered entity that filed a plan): from that day on this
code set was the national standard for every professional claim. The ``@release`` record starts there too, so
an earlier date of service is not covered (review, not judgement against a list that may not be the one then in
force). No code has been taken out of CMS's list that a source read here shows, so none has a last day but
the two renamed versions; 54 was renamed too ("Intermediate Care Facility/Mentally Retarded" in a 2010 copy), on
a date not established here, so only its present name is kept. The unassigned ranges (28-30, 35-40, 43-48,
59, 63-64, 67-70, 73-80, 82-98) are not codes and are not in the table: 30 is not a place of service.

``LAST_DAY``, 2027-03-31, is a choice: the last day of the rest of the default table (its ICD-10 releases
and CMS's MCE tables end there), one quarter past the quarter in which the list was checked (2026-12-07).
CMS's list states no end, and CMS changes it rarely (six times from 2016 to 2024: 19, 02, 58, 10, 27, 66) but
with little notice: new codes take effect on the first of a month, most on a quarter's first day, announced
weeks ahead (58: transmittal 4472 of 2019-12-05 for 2020-01-01) or by a transmittal issued after the code took
effect (66: transmittal 12779 of 2024-08-09 for 2024-08-01). No far horizon can be vouched for; the default
table is checked as a whole, each quarter. The newest copy of the whole list read here is HL7's of 2025-04-26;
no code added since was found in the pages searched, which is no proof. A date after ``LAST_DAY`` is one no
loaded POS release covers (``CodeTable.covers_date`` is False: the place of service goes to review, as any
code of an uncovered date does, and ProcessorCodeTableRunsOut warns 30 days ahead) until someone checks CMS's
page again, adds what changed to ``CODES`` and moves ``LAST_DAY`` on.
"""

from __future__ import annotations

from typing import Any

from processor.code_systems import POS
from processor.code_table.releases import Release, _record, release_record

# The first day the list speaks for: the HIPAA transaction and code set standards' last compliance date.
FIRST_DAY = "2003-10-16"
# The last: the end of the quarter in which the list was checked (module doc).
LAST_DAY = "2027-03-31"
RELEASE = Release("POS 2026-Q4", FIRST_DAY, LAST_DAY, POS)

# (code, first day, last day or None, CMS's name), one row per version, in code order.
CODES: tuple[tuple[str, str, str | None, str], ...] = (
    ("01", "2003-10-01", None, "Pharmacy"),
    ("02", "2017-01-01", "2021-12-31", "Telehealth"),
    ("02", "2022-01-01", None, "Telehealth Provided Other than in Patient's Home"),
    ("03", "2003-01-01", None, "School"),
    ("04", "2003-01-01", None, "Homeless Shelter"),
    ("05", "2003-01-01", None, "Indian Health Service Free-standing Facility"),
    ("06", "2003-01-01", None, "Indian Health Service Provider-based Facility"),
    ("07", "2003-01-01", None, "Tribal 638 Free-standing Facility"),
    ("08", "2003-01-01", None, "Tribal 638 Provider-based Facility"),
    ("09", "2006-07-01", None, "Prison/Correctional Facility"),
    ("10", "2022-01-01", None, "Telehealth Provided in Patient's Home"),
    ("11", FIRST_DAY, None, "Office"),
    ("12", FIRST_DAY, None, "Home"),
    ("13", "2003-10-01", None, "Assisted Living Facility"),
    ("14", "2003-10-01", None, "Group Home"),
    ("15", "2003-01-01", None, "Mobile Unit"),
    ("16", "2008-01-01", None, "Temporary Lodging"),
    ("17", "2010-05-01", None, "Walk-in Retail Health Clinic"),
    ("18", "2013-01-01", None, "Place of Employment-Worksite"),
    ("19", "2016-01-01", None, "Off Campus-Outpatient Hospital"),
    ("20", "2003-01-01", None, "Urgent Care Facility"),
    ("21", FIRST_DAY, None, "Inpatient Hospital"),
    ("22", FIRST_DAY, "2015-12-31", "Outpatient Hospital"),
    ("22", "2016-01-01", None, "On Campus-Outpatient Hospital"),
    ("23", FIRST_DAY, None, "Emergency Room - Hospital"),
    ("24", FIRST_DAY, None, "Ambulatory Surgical Center"),
    ("25", FIRST_DAY, None, "Birthing Center"),
    ("26", FIRST_DAY, None, "Military Treatment Facility"),
    ("27", "2023-10-01", None, "Outreach Site/Street"),
    ("31", FIRST_DAY, None, "Skilled Nursing Facility"),
    ("32", FIRST_DAY, None, "Nursing Facility"),
    ("33", FIRST_DAY, None, "Custodial Care Facility"),
    ("34", FIRST_DAY, None, "Hospice"),
    ("41", FIRST_DAY, None, "Ambulance - Land"),
    ("42", FIRST_DAY, None, "Ambulance - Air or Water"),
    ("49", "2003-10-01", None, "Independent Clinic"),
    ("50", FIRST_DAY, None, "Federally Qualified Health Center"),
    ("51", FIRST_DAY, None, "Inpatient Psychiatric Facility"),
    ("52", FIRST_DAY, None, "Psychiatric Facility-Partial Hospitalization"),
    ("53", FIRST_DAY, None, "Community Mental Health Center"),
    ("54", FIRST_DAY, None, "Intermediate Care Facility/Individuals with Intellectual Disabilities"),
    ("55", FIRST_DAY, None, "Residential Substance Abuse Treatment Facility"),
    ("56", FIRST_DAY, None, "Psychiatric Residential Treatment Center"),
    ("57", "2003-10-01", None, "Non-residential Substance Abuse Treatment Facility"),
    ("58", "2020-01-01", None, "Non-residential Opioid Treatment Facility"),
    ("60", FIRST_DAY, None, "Mass Immunization Center"),
    ("61", FIRST_DAY, None, "Comprehensive Inpatient Rehabilitation Facility"),
    ("62", FIRST_DAY, None, "Comprehensive Outpatient Rehabilitation Facility"),
    ("65", FIRST_DAY, None, "End-Stage Renal Disease Treatment Facility"),
    ("66", "2024-08-01", None, "Programs of All-Inclusive Care for the Elderly (PACE) Center"),
    ("71", FIRST_DAY, None, "Public Health Clinic"),
    ("72", FIRST_DAY, None, "Rural Health Clinic"),
    ("81", FIRST_DAY, None, "Independent Laboratory"),
    ("99", FIRST_DAY, None, "Other Place of Service"),
)


def pos_records() -> list[tuple[str, dict[str, Any]]]:
    """The code set's records: its ``@release`` record (``FIRST_DAY`` to ``LAST_DAY``), then one record per
    version in ``CODES``, billable, its CMS name as description."""
    codes = [_record(code, True, name, first, last, RELEASE.name, None, POS) for code, first, last, name in CODES]
    return [release_record(RELEASE), *codes]
