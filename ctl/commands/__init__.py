"""One module per area of the command tree; each has `register(commands, common)`.

Handlers are thin (STYLE.md: crane's commands): parse nothing themselves, build a request from
`specs`, make one or two calls, print with `views` or as JSON, and return the exit code.
"""
