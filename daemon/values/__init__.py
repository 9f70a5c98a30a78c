"""Pure value parsers on the ground floor, beside `settings`: tag regexes (RE2), version tags and
ranges, repository globs and names. No I/O and no imports from the layers above, so the config
front door, the settings and the engine all use the same parsers (a value that loads is a value
that runs)."""
