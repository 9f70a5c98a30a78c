"""What runs inside `regsyncd serve`: the bounded executor, the cron scheduler (and
its pure cron arithmetic), the event hub and its watch items, per-execution logs.

Below the control layer, which starts runs through it; above the store and engine.
"""
