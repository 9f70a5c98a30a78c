"""Watching the daemon from outside: Prometheus metrics (`metrics`), fed by the event hub and
the registry transport's observer hook; the mapping rules are pure (`labels`)."""
