"""Loaded by scripts/api-fuzz.sh (PYTHONPATH) into schemathesis' Python.

CPython 3.11 keeps the AST constructor's recursion depth in per-interpreter state, so two threads
calling `ast.parse` at once can make it raise `SystemError: AST constructor recursion depth
mismatch` (fixed in later CPython versions). schemathesis runs with several worker threads, and
Hypothesis parses lambda sources with `ast.parse` to describe its strategies, so a run could fail
at random in the fuzzer itself. Serialising `ast.parse` removes the race; nothing else changes.
"""

import ast
import sys
import threading

if sys.version_info < (3, 12):
    _lock = threading.Lock()
    _parse = ast.parse

    def _serialised_parse(*args, **kwargs):
        with _lock:
            return _parse(*args, **kwargs)

    ast.parse = _serialised_parse
