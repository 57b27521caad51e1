"""``processor bench``: how fast the processor is, next to what Kafka and Python allow and next to Faust.

One run measures, on the same broker, the same generated claims and orders, and the same sizes:

- ``ceiling``: a plain aiokafka loop (consume, parse, serialize, batched send, commit) that decides nothing;
- ``processor``: the real worker (``python -m processor run``), exactly-once and at-least-once, with 1 and
  more worker processes in one consumer group;
- ``faust``: a faust-streaming agent that calls the same engine and sends to the same outcome topics;
- ``engine``: decode, decide and serialize with no broker at all;

and the code-table cost: how long a follower takes to load the full default table from its topic, and
the memory it then holds; the same for a production-size table (the default table with CMS-sized HCPCS,
NCCI PTP and MUE tables, 1.24M records); and the duplicate window's cost per claim and the restore of a
window of 10 million entries (``window_cost``). Every broker variant runs as its own process, so its peak
RSS is its own.

Modules: ``data`` (events, once), ``runner`` (one broker variant: topics, backlog, processes, measuring),
``observe`` (reading the decisions: drain rate and latency), ``ceiling``, ``faust_agent``,
``engine_alone`` and ``code_table_cost`` (what runs in the measured processes), ``production_table`` (the
records of the production-size table), ``window_cost`` (the duplicate window's row, and what its measured
processes run), ``machine`` (CPU, RSS), ``report`` (table, ratios, JSON, chart), ``progress`` (the bar on
stderr), ``bench`` (the whole run).
"""
