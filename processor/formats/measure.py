"""What reading each format costs, with this package's readers and with the libraries considered for them:
``python -m processor.formats.measure [FIXTURES_DIR]`` prints µs per unit (an 837 claim, an HL7 message of the
fixtures, which holds two orders, a FHIR Claim) and how many units one core reads a second.

Measured the way ``/work/shared/PERFORMANCE.md`` says: the inputs built first, ``gc.freeze()``, the collector
off during each loop, the best of three runs. A library that is not installed is reported as such (pyx12 is
a dependency; hl7, hl7apy and fhir.resources are test extras or none).
"""

from __future__ import annotations

import gc
import io
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processor.formats.fhir import parse_fhir
from processor.formats.hl7v2 import parse_hl7
from processor.formats.x12_837 import parse_837

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "formats"


def best_of(run: Callable[[], Any], repeat: int, runs: int = 3) -> float:
    """Seconds per call of ``run``: the best of ``runs`` loops of ``repeat`` calls, the collector off."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        best = float("inf")
        for _ in range(runs):
            start = time.perf_counter()
            for _ in range(repeat):
                run()
            best = min(best, (time.perf_counter() - start) / repeat)
        return best
    finally:
        gc.enable()
        gc.unfreeze()


def candidates(fixtures: Path) -> list[tuple[str, str, int, Callable[[], Any] | None, int]]:
    """(unit, reader, units per call, the call or None when not installed, calls per run)."""
    x12 = (fixtures / "837p-50-claims.x12").read_bytes()
    orm = (fixtures / "orm-o01.hl7").read_bytes()
    oml = (fixtures / "oml-o21.hl7").read_bytes()
    claim = (fixtures / "fhir-claim.json").read_bytes()
    claims = len(parse_837(x12).claims)
    rows: list[tuple[str, str, int, Callable[[], Any] | None, int]] = [
        ("837P claim", "processor.formats.parse_837 (own reader)", claims, lambda: parse_837(x12), 50),
        ("ORM^O01 msg", "processor.formats.parse_hl7 (own reader)", 1, lambda: parse_hl7(orm), 2000),
        ("OML^O21 msg", "processor.formats.parse_hl7 (own reader)", 1, lambda: parse_hl7(oml), 2000),
        ("FHIR Claim", "processor.formats.parse_fhir (orjson + own mapping)", 1, lambda: parse_fhir(claim), 2000),
    ]
    rows += _pyx12(x12, claims) + _hl7(orm, oml) + _fhir_resources(claim)
    return rows


def _pyx12(x12: bytes, claims: int) -> list[tuple[str, str, int, Callable[[], Any] | None, int]]:
    try:
        import pyx12.params
        import pyx12.x12file
        import pyx12.x12n_document
    except ImportError:
        return [("837P claim", "pyx12", claims, None, 0)]
    text = x12.decode()
    logging.getLogger("pyx12").setLevel(logging.CRITICAL + 1)

    def tokens() -> None:
        for _ in pyx12.x12file.X12Reader(io.StringIO(text)):
            pass

    def validate() -> None:
        pyx12.x12n_document.x12n_document(pyx12.params.params(), io.StringIO(text), None, None)

    return [("837P claim", "pyx12 X12Reader (segments only, no map)", claims, tokens, 5),
            ("837P claim", "pyx12 x12n_document (full 837P X222A1 validation)", claims, validate, 2)]  # fmt: skip


def _hl7(orm: bytes, oml: bytes) -> list[tuple[str, str, int, Callable[[], Any] | None, int]]:
    rows: list[tuple[str, str, int, Callable[[], Any] | None, int]] = []
    try:
        import hl7

        text = orm.decode()
        rows.append(("ORM^O01 msg", "hl7 (python-hl7) parse, segments only", 1, lambda: hl7.parse(text), 2000))
    except ImportError:
        rows.append(("ORM^O01 msg", "hl7 (python-hl7)", 1, None, 0))
    try:
        from hl7apy.consts import VALIDATION_LEVEL
        from hl7apy.parser import parse_message

        orm_text, oml_text = orm.decode(), oml.decode()
        rows += [
            ("ORM^O01 msg", "hl7apy parse_message (tolerant, groups)", 1,
             lambda: parse_message(orm_text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True), 100),
            ("OML^O21 msg", "hl7apy parse_message (strict, groups)", 1,
             lambda: parse_message(oml_text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True), 100),
        ]  # fmt: skip
    except ImportError:
        rows.append(("ORM^O01 msg", "hl7apy", 1, None, 0))
    return rows


def _fhir_resources(claim: bytes) -> list[tuple[str, str, int, Callable[[], Any] | None, int]]:
    try:
        from fhir.resources.R4B.claim import Claim
    except ImportError:
        return [("FHIR Claim", "fhir.resources R4B", 1, None, 0)]
    return [("FHIR Claim", "fhir.resources R4B Claim.model_validate_json", 1, lambda: Claim.model_validate_json(claim),
             200)]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    fixtures = Path(args[0]) if args else FIXTURES
    print(f"{'unit':<12} {'reader':<58} {'µs/unit':>10} {'units/s':>10}")
    for name, reader, events, run, repeat in candidates(fixtures):
        if run is None:
            print(f"{name:<12} {reader:<58} {'not installed':>21}")
            continue
        run()  # warm: maps loaded, caches filled
        per_event = best_of(run, repeat) / events
        print(f"{name:<12} {reader:<58} {per_event * 1e6:>10.1f} {1 / per_event:>10,.0f}")


if __name__ == "__main__":
    main()
