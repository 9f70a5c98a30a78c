"""regsyncd: everything that does work, in floors, each importing only those below it.

- `base`: the error tree (split by who is at fault), safe text, durations. The ground floor.
- `values` and `settings`: pure value parsers (names, tag regexes, version ranges, globs,
  platforms) and the typed, already-parsed settings every layer reads.
- `oci`: the content model (media types, digests, manifests, references, referrers) and the
  `RegistryPort` Protocol the engine copies through, with an in-memory backend.
- `registry`: the HTTP backend of the port (httpx on trio, over its own lean HTTP/1.1
  transport): auth flows, retries and rate limits, listings, manifests and blobs;
  `registry.factory.open_port` opens a port from a registry's settings.
- `engine` turns a sync rule into a result: a pure plan decides what to do for each tag, `copy`
  does it through the port, emitting progress events.
- `config` reads the user's YAML (and the API's specs, through the same validation) into
  settings.
- `store` keeps tasks, executions and their results (SQLite, or PostgreSQL shared by several
  daemons) and returns `store.records` values.
- `runtime` runs executions (a bounded pool, stop, resume), fires cron schedules and fans
  events out to watchers; on a shared PostgreSQL store `cluster` shares the executions
  (leases) and elects the one daemon that fires the schedules, and `feed` brings the other
  daemons' runs to this one's watchers; `monitor` and `notify` turn those events into metrics and webhooks.
- `control` is the service layer: one method per operation, behind the `ControlPlane` contract.
- `api` is its gRPC face (thin servicers, the trio bridge); `cli` is the process itself
  (`regsyncd once | check | serve`).

docs/architecture.md has the table; tests/unit/test_architecture.py enforces it.
"""
