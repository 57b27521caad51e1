"""The engine's memo: what it found about one code on given dates, kept per code table while the table stays
as it is.

The same codes come back on event after event, and the answer about a code depends only on the code, its
dates and the table, so ``decide`` keeps its answers instead of checking again. They hold as long as the
table does not change: each table's answers are kept with the table's ``revision``, and a table whose
revision has moved gets a new, empty memo. The memo is keyed by the table itself, weakly, so a table that
nobody uses any more is dropped with its answers. It also keeps a few answers about the table as it is (what
it holds, whether a line's modifiers are valid on a date), which change with it just the same.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary, ref

from processor.code_table.table import CodeTable

# The most answers one table's memo keeps; past it the memo starts again, so codes and dates nobody uses
# twice cannot grow it without bound.
MEMO_LIMIT = 100_000

_MEMOS: WeakKeyDictionary[CodeTable, tuple[int, dict[Any, Any]]] = WeakKeyDictionary()
# The table asked for last, its revision and its answers: a worker asks of one table event after event, and a
# weak reference's call is far cheaper than a weak-key dictionary's look-up.
_last: tuple[Any, int, dict[Any, Any]] = (lambda: None, -1, {})


def memo_of(table: CodeTable) -> dict[Any, Any]:
    """The answers kept for ``table`` as it is now: empty when the table changed since they were found.

    Look it up once per event, not per code."""
    global _last
    last_table, revision, answers = _last
    if last_table() is table and revision == table.revision:
        return answers
    held = _MEMOS.get(table)
    if held is not None and held[0] == table.revision:
        answers = held[1]
    else:
        answers = {}
        _MEMOS[table] = (table.revision, answers)
    _last = (ref(table), table.revision, answers)
    return answers
