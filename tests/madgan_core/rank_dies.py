"""``madgan`` under torchrun, where one rank is killed (SIGKILL) right after its first part file.

Used by tests/madgan_core/test_cohort_distributed.py to check that a run whose rank died
continues when run again. The rank to kill is ``MADGAN_TEST_DIE_RANK``.
"""

from __future__ import annotations

import os
import signal
import sys

from madgan_core.cli import main
from madgan_core.runtime import sharding

if os.environ.get("RANK") == os.environ.get("MADGAN_TEST_DIE_RANK"):
    write = sharding.PartFolder.write

    def write_then_die(self, key, record):
        path = write(self, key, record)
        os.kill(os.getpid(), signal.SIGKILL)  # no handler runs, as when a node is lost
        return path

    sharding.PartFolder.write = write_then_die

if __name__ == "__main__":
    sys.exit(main())
