"""regsyncd: everything that does work.

The layers, bottom up, each using only those below it:

- `settings` (the typed values every layer runs on) and `values` (pure parsers: tag regexes,
  versions, repository globs and names) are the ground floor.
- `registry` speaks the Registry HTTP API V2 (httpx on trio, over its own lean HTTP/1.1
  transport): references, auth flows, retries and rate limits, manifests and blobs. It knows
  nothing about rules or runs.
- `engine` turns a sync rule into a result: pure filters and plans decide what to do, `copy`
  does it through a `RegistryPort`, emitting progress events.
- `config` is the YAML front door: it loads the user's file (or a document or spec an API
  client sent, through the same `validate_document`) into `settings`; `main` is the command line
  (`regsyncd once | check | serve`).
- The scheduler, worker pool, store (SQLite, or PostgreSQL shared by several daemons) and gRPC
  API sit on top (the daemon issue).
"""
