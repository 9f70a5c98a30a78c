"""The content model and the port: what an image is, and what the engine needs to copy one.

- `types`, `digest`, `manifest`, `reference`, `jsondoc`, `referrers`: pure values and parsers
  (media types, descriptors, manifests as served, digests, image references, the referrers tag
  schema). No I/O.
- `port`: the `RegistryPort` Protocol the engine speaks to.
- `memory`: an in-memory backend of it (the engine's unit tests; no sockets).

Backends (the HTTP one in `daemon/registry`, later an OCI-layout directory) import this
package; it imports none of them.
"""
