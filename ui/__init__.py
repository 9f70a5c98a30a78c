"""The NiceGUI panel: a thin gRPC client of regsyncd for browsers.

Layers, bottom up: `client` (the grpc.aio channel, readable errors) -> `api` (one typed method
per RPC, bound to a tab's token) -> `session` (the tab's token, failures as notifications) ->
`components` and `pages` (one module per view, no logic of their own) -> `app` (routes) ->
`server` (uvicorn in a thread, started by `regsyncd serve` or `python -m regsync.ui`).
`format` and `forms` are pure: how values are shown, and form values <-> API messages.
"""
