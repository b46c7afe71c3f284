"""What every benchmark script shares; the scripts in ``benchmarks/`` are thin on top of it.

- ``procs``: short commands, bounded waits, long-running processes in sessions of their
  own (optionally inside a network namespace) with their JSON events, stopped together;
- ``proctime``: CPU ticks and memory read from ``/proc`` (per process, thread or session);
- ``netns``: a bridge namespace and one namespace per host, capped with ``tc tbf``;
- ``servers``: opentracker (whitelist first) and nginx (a web seed, plain HTTP);
- ``aria2``: aria2c seeders and leechers kept to our tracker, and its completion hook;
- ``data``: generated datasets (tar shards, raw files) and ``torrentds create``;
- ``verify``: a copy checked independently of torrentds (``sha256sum -c``);
- ``session``: the temp folder, signals, the loop over cases, and the final leftover check;
- ``report``: the machine, tool versions, the torrentds source, markdown tables.
"""
