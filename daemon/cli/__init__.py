"""The `regsyncd` process: `once | check | serve` (argument parsing, the console, the
assembly of every component for `serve`, systemd notifications). The top floor.
"""
