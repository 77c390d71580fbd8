"""Fixtures of the hardening tests: what the server logged while a test ran."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from twisted.logger import ILogObserver, globalLogPublisher


@pytest.fixture
def log_events() -> Iterator[list[dict[str, Any]]]:
    """Every log event published while the test runs."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(cast(ILogObserver, events.append))
    yield events
    globalLogPublisher.removeObserver(cast(ILogObserver, events.append))


@pytest.fixture
def logged_failures() -> Iterator[list[dict[str, Any]]]:
    """The failures (tracebacks) logged while the test runs, but those of application handlers."""
    failures: list[dict[str, Any]] = []

    def watch(event: dict[str, Any]) -> None:
        if "log_failure" in event and "handler of" not in str(event.get("log_format", "")):
            failures.append(event)

    globalLogPublisher.addObserver(cast(ILogObserver, watch))
    yield failures
    globalLogPublisher.removeObserver(cast(ILogObserver, watch))
