"""The application: the worker loop above the transport, and what it needs to run safely.

- ``worker``     the consume, decide, deliver loop of one group member
- ``ledger``     the offset ledger: next offsets, the batch in flight, the rebalance generation
- ``rebalance``  handing partitions over when the group rebalances
- ``windows``    the duplicate window of each claims partition: committed entries, checkpoint, restore
- ``window_store`` a window on local disk: the LMDB store, its segments and checkpoint
- ``sensor``     what the worker reports; ``metrics`` counts it for Prometheus; ``health`` serves it
- ``processes``  one worker until SIGTERM, or ``--workers`` N processes
"""
