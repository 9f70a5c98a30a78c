"""The NiceGUI panel: a thin gRPC client for browsers."""
