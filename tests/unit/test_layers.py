"""The package map as a test: each part of ``processor`` imports only from its own layer or the layers below.

Bottom to top: the foundations (settings, code systems, contracts, sample events), the code table's data,
the engine's rules, the formats submitters speak (X12, HL7 v2 and FHIR, in and out), routing (what a record
becomes), the Kafka transport, the application (the worker), and the commands. A back arrow (the transport
importing the worker, the code table importing Kafka) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "processor"

LAYERS = [
    {"processor.config", "processor.code_systems", "processor.contracts", "processor.samples"},
    {"processor.code_table"},
    {"processor.engine"},
    {"processor.formats"},
    {"processor.routing"},
    {"processor.kafka"},
    {"processor.app"},
    {"processor.cli", "processor.demo", "processor.check", "processor.bench", "processor.__main__"},
]


def layer_of(module: str) -> int:
    for index, parts in enumerate(LAYERS):
        if any(module == part or module.startswith(part + ".") for part in parts):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to the README's map)")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name != "processor":
            found[name] = path
    return found


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("processor.")}


def test_every_module_imports_only_its_own_layer_or_below():
    back_arrows = [
        f"{module} (layer {layer_of(module)}) imports {imported} (layer {layer_of(imported)})"
        for module, path in sorted(modules().items())
        for imported in sorted(imports_of(path))
        if layer_of(imported) > layer_of(module)
    ]
    assert not back_arrows, "\n".join(back_arrows)


def test_the_worker_stays_a_thin_shell():
    lines = (PACKAGE / "app" / "worker.py").read_text().count("\n")
    assert lines < 250, f"app/worker.py has {lines} lines: move a concern into a module of its own"


def test_the_transport_knows_nothing_of_metrics_rules_or_the_application():
    for path in (PACKAGE / "kafka").glob("*.py"):
        for imported in imports_of(path):
            assert not imported.startswith(("processor.app", "processor.engine")), f"{path.name} imports {imported}"
