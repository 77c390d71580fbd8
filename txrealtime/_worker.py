"""``python -m txrealtime._worker [options] --worker-channel FD:INDEX``: one worker process of ``--workers N``.

Only the master (:class:`txrealtime.cluster.master.MasterService`) starts it,
with its own options and the channel to it (:class:`txrealtime.command.WorkerOptions`).
"""

from __future__ import annotations

import sys

from .__main__ import run
from .command import WorkerOptions

if __name__ == "__main__":
    run(WorkerOptions, sys.argv[1:])
