"""Every txrealtime logger is named after its module, compiled with mypyc or not.

``twisted.logger.Logger()`` guesses its namespace from the calling frame; a
module compiled with mypyc has none, and the guess names ``importlib._bootstrap``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from twisted.logger import Logger

import txrealtime

SOURCE = Path(txrealtime.__file__).parent


def test_every_logger_call_names_its_namespace() -> None:
    unnamed = [
        f"{path.relative_to(SOURCE)}:{number}"
        for path in SOURCE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bLogger\((?!__name__|namespace=)", line)
    ]
    assert unnamed == []


def test_module_loggers_carry_the_module_name() -> None:
    checked = []
    for info in pkgutil.walk_packages(txrealtime.__path__, "txrealtime."):
        if info.name.startswith("txrealtime.cluster._") or info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra (prometheus_client...) not installed
            continue
        log = getattr(module, "log", None)
        if isinstance(log, Logger):
            assert log.namespace == info.name
            checked.append(info.name)
    # The compiled session module among them: the one whose guess went wrong.
    assert "txrealtime.engineio.session" in checked and len(checked) >= 25
