"""The ground floor: the error tree, safe text for logs and consoles, durations.

Imports nothing else of regsync; every layer above may import it.
"""
