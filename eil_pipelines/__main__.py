"""``python -m eil_pipelines`` is ``eil-run``."""

from .cli import entry

entry()
