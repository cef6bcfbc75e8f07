"""Core: the definitions written once and imported everywhere (event schema, settings and
configuration, diagnostic rules, clinical scores, paths, value and table formatting).

First stage: imports nothing else of the package, so any stage may import it.
"""
