"""Fixtures of the delivery tests: real servers on 127.0.0.1 and scheduler
services on a manual clock (see delivery_helpers.py)."""

from __future__ import annotations

import pytest
from delivery_helpers import HttpServer, SilentServer, SmtpServer


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def http():
    server = HttpServer()
    yield server
    server.stop()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.stop()


@pytest.fixture
def make_service(project):
    """Build and start services (no loop thread, no watcher); stopped after the test."""
    from eil_pipelines.app.service import SchedulerService

    made = []

    def make(clock, *, env=None, start: bool = True, **options):
        service = SchedulerService(
            project.pipelines, reports_dir=project.reports, clock=clock, env=env or {}, **options
        )
        made.append(service)
        if start:
            service.start(watch=False, loop=False)
        return service

    yield make
    for service in made:
        service.stop(grace=5)
