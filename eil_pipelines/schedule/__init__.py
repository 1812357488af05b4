"""Generic scheduling: triggers, the scheduler loop and its worker pool.

Knows nothing of pipelines; depends only on :mod:`eil_pipelines.errors`, the
standard library and cronsim.
"""
