"""Generic scheduling: triggers, the scheduler loop and its worker pool.

Knows nothing of pipelines; depends only on :mod:`eil_pipelines.errors` and the
standard library.  cronsim, an independent cron implementation, cross-checks
the cron triggers in the tests.
"""
