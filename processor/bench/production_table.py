"""A production-size code table for the benchmark: the default table, and CMS-sized HCPCS, NCCI PTP and MUE
tables generated in exactly the shapes their loaders publish.

What a payer's code-table topic holds in production: ICD-10-CM and ICD-10-PCS for two fiscal years with
CMS's MCE lists (the default table, ``table_records(default=True, demo=True)``, about 200,000 records), CMS's
HCPCS Level II file (about 7,000 codes and a few hundred modifiers), both NCCI PTP tables (about a million
edits between them, counting the deleted ones CMS keeps listing) and the three MUE tables (about 30,000
codes). CMS's HCPCS, PTP and MUE files are not in the repository, so those parts are generated, seeded, with
CMS's sizes and mixes:

- HCPCS: ``SIZES["hcpcs"]`` codes (a letter and four digits, letters in about CMS's proportions) with long
  and short descriptions, coverage and action codes, add dates from 1984 on and a termination date on about
  one in eight; plus Level II modifiers. Made by ``releases.merge_hcpcs`` on an empty topic, as
  ``processor load hcpcs`` makes them (``@release`` records included).
- NCCI PTP: the practitioner and hospital tables (CMS's are of about one size, the practitioner one a little
  larger). Column-1 codes are 70 % of a pool of ``CODE_POOL`` CPT-shaped and HCPCS codes, each with a skewed
  number of column-2 codes from the pool (a few column-1 codes have a thousand or more, as CMS's E/M and
  surgical codes do); files sorted by column 1 then column 2, as CMS's are. Modifier indicator 1 on about
  89 % of edits, 0 on 8 %, 9 (deleted retroactively: deletion date = effective date) on 3 %; 8 % existed
  before 1996, the others take effect on a quarter's first day from 1996 to 2026; a quarter of the rest
  carry a later deletion date; ten of CMS's rationale texts. Each column-1 code's edits are
  ``ncci_mue.ptp_set_records_of`` (``@ncci-set`` records), after the table's ``@release`` record, as
  ``processor load ncci-ptp`` publishes them on an empty topic.
- MUE: practitioner, outpatient hospital and DME tables, drawn from the pool's CPT-shaped codes and every
  HCPCS code (the DME one from the HCPCS supply and equipment letters), MAI 3 on 60 %, 2 on 25 %, 1 on 15 %,
  units mostly 1 to 4, CMS's rationale texts; each code ``ncci_mue.mue_record`` from the release's first day.

Every generated key is distinct (each (column 1, column 2) pair of a table is drawn once), so the topic holds
every record after compaction too. The PTP and MUE records are made as they are published (a generator):
building a million records up front would cost the bench process seconds and hundreds of MB it does not need.
``scale`` shrinks the generated parts (the default table stays whole): ``QUICK_SCALE`` (1/50) is for quick runs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TypeVar

from processor.code_systems import HCPCS
from processor.code_table.cms_files import HcpcsFile, ReleaseCode
from processor.code_table.ncci_mue import (
    SET_SIZE,
    MueRow,
    PtpEdit,
    PtpRow,
    mue_record,
    ptp_set_records_of,
    quarter_last_day,
    release_system,
)
from processor.code_table.releases import Release, merge_hcpcs, release_record
from processor.code_table.sources import Record
from processor.code_table.table import MUE, MUE_TABLES, NCCI, PTP_TABLES

# CMS's sizes. HCPCS 2026: about 7,000 procedure codes (terminated ones included) and some 400 modifiers.
SIZES = {
    "hcpcs": 7_000,
    "hcpcs_modifiers": 400,
    "ncci_practitioner": 520_000,
    "ncci_hospital": 480_000,
    "mue_practitioner": 14_000,
    "mue_outpatient": 13_600,
    "mue_dme": 2_400,
}
CODE_POOL = 10_000  # the CPT-shaped and HCPCS codes the PTP and MUE tables are drawn from
HCPCS_IN_POOL = 2_000  # of which HCPCS codes (the rest: five digits, CPT's shape)
QUICK_SCALE = 1 / 50  # ``processor bench --quick``: about 20,000 edits, so that a smoke run stays short
T = TypeVar("T")
FIRST_DAY = "2026-01-01"  # the first day of the quarter the NCCI and MUE releases cover

# How often each HCPCS Level II letter starts a code (about CMS's file: many G, J, L and E codes, few B or M).
_LETTERS = {"A": 9, "B": 1, "C": 9, "E": 10, "G": 16, "H": 2, "J": 13, "K": 6, "L": 14, "M": 1, "P": 1, "Q": 8,
            "R": 1, "S": 5, "T": 1, "U": 1, "V": 3}  # fmt: skip
_COVERAGE = {"C": 40, "D": 10, "I": 25, "M": 15, "S": 10}
_WORDS = ("injection", "supply", "catheter", "dressing", "orthosis", "prosthesis", "wheelchair", "battery",
          "replacement", "adjustable", "sterile", "disposable", "custom fabricated", "prefabricated", "hospital",
          "home", "transport", "monitoring", "assessment", "therapy", "device", "system", "accessory",
          "electrode", "lens", "pump", "infusion", "oral", "topical", "implant")  # fmt: skip
_UNITS = ("each", "per 1 mg", "per 10 mg", "per 100 units", "per month", "pair", "per 15 minutes", "per visit",
          "per session", "per square centimeter")  # fmt: skip
# CMS's PTP rationales, most edits under the first few.
_PTP_RATIONALES = {
    "Standards of medical / surgical practice": 40,
    "Misuse of column two code with column one code": 14,
    "CPT Manual or CMS manual coding instructions": 12,
    "Mutually exclusive procedures": 10,
    "HCPCS/CPT procedure code definition": 8,
    "More extensive procedure": 6,
    "CPT separate procedure definition": 4,
    "Anesthesia service included in surgical procedure": 3,
    "Laboratory panel": 2,
    "Gender-specific procedures": 1,
}
_MUE_RATIONALES = {
    "Clinical: Data": 30,
    "Anatomic Consideration": 20,
    "Code Descriptor / CPT Instruction": 15,
    "Nature of Service/Procedure": 12,
    "CMS Policy": 8,
    "Clinical: CMS Workgroup": 6,
    "Nature of Equipment": 4,
    "Prescribing Information": 3,
    "Published Contractor Policy": 2,
}
_PTP_RATIONALE_DRAW = tuple(text for text, weight in _PTP_RATIONALES.items() for _ in range(weight))
_MAI = {1: 15, 2: 25, 3: 60}
_UNITS_ALLOWED = {1: 45, 2: 20, 3: 8, 4: 7, 6: 4, 10: 4, 20: 3, 50: 3, 100: 2, 400: 2, 1000: 2}
# First days of the quarters from 1996 to FIRST_DAY: an edit takes effect, and is deleted, on one of them.
_QUARTERS = [f"{year}-{month:02d}-01" for year in range(1996, 2027) for month in (1, 4, 7, 10)]
_QUARTERS = _QUARTERS[: _QUARTERS.index(FIRST_DAY) + 1]


@dataclass(frozen=True)
class ProductionTable:
    """The records of a production-size table: ``records()`` yields them in publishing order (the default
    table, HCPCS, then each PTP and MUE table after its ``@release`` record); ``sizes`` counts them by part."""

    base: Sequence[Record]
    hcpcs: Sequence[Record]
    pool: tuple[str, ...]
    mue_pool: tuple[str, ...]
    scale: float
    seed: int
    sizes: dict[str, int]  # records by part: default (the default table, demo rows), hcpcs, ncci, mue

    @classmethod
    def make(cls, base: Sequence[Record], scale: float = 1.0, seed: int = 7) -> ProductionTable:
        """The table on top of ``base`` (the default table's records), its generated parts scaled by ``scale``."""
        rng = random.Random(seed)
        taken = {record["code"] for _, record in base if record and record.get("system") == HCPCS}
        codes = _hcpcs_codes(rng, _scaled("hcpcs", scale), taken)
        modifiers = _hcpcs_modifiers(rng, _scaled("hcpcs_modifiers", scale))
        hcpcs = list(merge_hcpcs({}, HcpcsFile(codes, modifiers, ()), "2026", "2026-01-01", "2026-12-31"))
        in_pool = rng.sample(sorted(codes), min(len(codes), HCPCS_IN_POOL))
        cpt = (f"{n:05d}" for n in rng.sample(range(100, 100_000), CODE_POOL - len(in_pool)))
        pool = tuple(sorted([*cpt, *in_pool]))
        mue_pool = tuple(sorted({*pool, *codes}))
        sizes = {
            "default": len(base),
            "hcpcs": len(hcpcs),
            "ncci": 0,  # counted below: @ncci-set records, and each table's @release record
            "mue": sum(
                min(_scaled(f"mue_{table}", scale), len(_mue_codes(mue_pool, table))) + 1 for table in MUE_TABLES
            ),
        }
        made = cls(base, hcpcs, pool, mue_pool, scale, seed, sizes)
        for table in PTP_TABLES:
            counts = made._plan(table, made._ptp_random(table))[1]
            sizes["ncci"] += 1 + sum(-(-count // SET_SIZE) for count in counts)
        return made

    @property
    def ncci_edits(self) -> int:
        """The NCCI PTP edits the ``@ncci-set`` records hold, both tables."""
        return sum(_scaled(f"ncci_{table}", self.scale) for table in PTP_TABLES)

    def __len__(self) -> int:
        return sum(self.sizes.values())

    def records(self) -> Iterator[Record]:
        """Every record, the PTP and MUE ones made as they are taken; the same records on every call."""
        ptp = (self._ptp(table, self._ptp_random(table)) for table in PTP_TABLES)
        mue = (self._mue(table, random.Random(f"{self.seed}-mue-{table}")) for table in MUE_TABLES)
        return chain(self.base, self.hcpcs, chain.from_iterable(ptp), chain.from_iterable(mue))

    def _ptp_random(self, table: str) -> random.Random:
        return random.Random(f"{self.seed}-ncci-{table}")

    def _plan(self, table: str, rng: random.Random) -> tuple[list[str], list[int]]:
        """The column-1 codes of a PTP table, and how many edits each has (the first draws of ``rng``)."""
        pool = self.pool
        firsts = sorted(rng.sample(pool, int(len(pool) * 0.7)))
        return firsts, _spread(rng, _scaled(f"ncci_{table}", self.scale), len(firsts), len(pool) - 1)

    def _ptp(self, table: str, rng: random.Random) -> Iterator[Record]:
        yield release_record(_release(NCCI, table))
        pool = self.pool
        for column1, count in zip(*self._plan(table, rng), strict=True):
            if not count:
                continue
            seconds = rng.sample(pool, count + 1)
            seconds = sorted(code for code in seconds if code != column1)[:count]
            edits = [PtpEdit.of(_ptp_row(rng, column1, column2)) for column2 in seconds]
            yield from ptp_set_records_of(table, column1, edits)

    def _mue(self, table: str, rng: random.Random) -> Iterator[Record]:
        yield release_record(_release(MUE, table))
        codes = _mue_codes(self.mue_pool, table)
        for code in sorted(rng.sample(codes, min(len(codes), _scaled(f"mue_{table}", self.scale)))):
            units = _pick(rng, _UNITS_ALLOWED)
            yield mue_record(table, MueRow(code, units, _pick(rng, _MAI), _pick(rng, _MUE_RATIONALES)), FIRST_DAY)


def _scaled(part: str, scale: float) -> int:
    return max(1, round(SIZES[part] * scale))


def _mue_codes(mue_pool: tuple[str, ...], table: str) -> Sequence[str]:
    """The codes an MUE table is drawn from: the pool's CPT-shaped codes and every HCPCS code; for the DME
    table, the HCPCS codes of supplies and equipment (A, B, E, K, L, V)."""
    if table == "dme":
        return [code for code in mue_pool if code[0] in "ABEKLV"]
    return mue_pool


def _release(kind: str, table: str) -> Release:
    """The release a ``processor load ncci-ptp|mue --first-day FIRST_DAY`` of ``table`` declares."""
    system = release_system(kind, table)
    return Release(f"{system} {FIRST_DAY}", FIRST_DAY, quarter_last_day(FIRST_DAY), system)


def _ptp_row(rng: random.Random, column1: str, column2: str) -> PtpRow:
    # A million of these: one random() a choice, not random.choices or randrange (a few µs each).
    draw = rng.random()
    indicator = "1" if draw < 0.89 else "0" if draw < 0.97 else "9"
    prior = rng.random() < 0.08
    last = len(_QUARTERS) - 1
    start = 0 if prior else 1 + int(rng.random() * last)
    end = None
    if indicator == "9":
        end = start  # deleted retroactively: CMS gives it its effective date as deletion date
    elif start < last and rng.random() < 0.25:
        end = start + 1 + int(rng.random() * (last - start))
    rationale = _PTP_RATIONALE_DRAW[int(rng.random() * len(_PTP_RATIONALE_DRAW))]
    return PtpRow(column1, column2, prior, _QUARTERS[start], None if end is None else _QUARTERS[end], indicator,
                  rationale)  # fmt: skip


def _spread(rng: random.Random, total: int, parts: int, cap: int) -> list[int]:
    """``total`` split into ``parts`` skewed counts (log-normal weights), each at most ``cap``."""
    weights = [rng.lognormvariate(0.0, 1.0) for _ in range(parts)]
    scale = total / sum(weights)
    counts = [min(cap, int(w * scale)) for w in weights]
    short = total - sum(counts)
    i = 0
    while short > 0:  # the rounding's remainder, one more each from the first column-1 codes with room
        if counts[i % parts] < cap:
            counts[i % parts] += 1
            short -= 1
        i += 1
    return counts


def _pick(rng: random.Random, weights: dict[T, int]) -> T:
    """One of ``weights``' keys, drawn in proportion to its weight."""
    return rng.choices(tuple(weights), tuple(weights.values()))[0]


def _hcpcs_codes(rng: random.Random, count: int, taken: set[str]) -> dict[str, ReleaseCode]:
    total = sum(_LETTERS.values())
    codes: dict[str, ReleaseCode] = {}
    for letter, weight in _LETTERS.items():
        numbers = rng.sample(range(10_000), max(1, round(count * weight / total)))
        for number in sorted(numbers):
            code = f"{letter}{number:04d}"
            if code not in taken:
                codes[code] = _hcpcs_code(rng, code)
    return codes


def _hcpcs_modifiers(rng: random.Random, count: int) -> dict[str, ReleaseCode]:
    letters, digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
    names = sorted(rng.sample([a + b for a in letters for b in letters + digits], count))
    return {name: _hcpcs_code(rng, name) for name in names}


def _hcpcs_code(rng: random.Random, code: str) -> ReleaseCode:
    """A code as ``cms_files.read_hcpcs_file`` reads one: described, with its coverage and action codes and
    its own dates (added, and terminated for about one in eight)."""
    words = rng.sample(_WORDS, rng.randint(3, 6))
    description = f"{words[0].capitalize()}, {' '.join(words[1:])}, {rng.choice(_UNITS)}"
    added = f"{rng.choice(range(1984, 2027))}-{rng.choice(('01', '04', '07', '10'))}-01"
    added = min(added, "2026-01-01")
    terminated = None
    if added < "2014-01-01" and rng.random() < 0.18:  # about one code in eight
        terminated = f"{rng.randrange(2014, 2026)}-12-31"
    action = "D" if terminated else "A" if added == "2026-01-01" else "N"
    attributes = {
        "short_description": description[:28].rstrip(),
        "coverage_code": _pick(rng, _COVERAGE),
        "action_code": action,
        "action_effective": added if action == "A" else "2026-01-01" if action == "N" else terminated,
    }
    return ReleaseCode(True, description, attributes, added, terminated)
