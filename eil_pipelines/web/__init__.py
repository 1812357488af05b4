"""The web edge: the report site served over HTTP (:mod:`.server`).

Like :mod:`eil_pipelines.cli`, it sits above :mod:`eil_pipelines.app` and
calls its use cases; nothing below imports it.
"""
