"""regsyncd: everything that does work.

The layers, bottom up, each using only those below it:

- `registry` speaks the Registry HTTP API V2 (httpx on trio, over its own lean HTTP/1.1
  transport): references, auth flows, retries and rate limits, manifests and blobs. It knows
  nothing about rules or runs.
- `engine` turns a sync rule into a result: pure filters and plans decide what to do, `copy`
  does it through a `RegistryPort`, emitting progress events.
- `config` loads the user's YAML into typed, validated values; `main` is the command line
  (`regsyncd once | check | serve`).
- The scheduler, worker pool, store (SQLite, or PostgreSQL shared by several daemons: `cluster`
  shares the executions and elects the scheduler, `feed` brings other daemons' runs) and gRPC
  API sit on top (the daemon issue).
"""
