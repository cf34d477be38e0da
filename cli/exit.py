"""Leave the process without running interpreter teardown.

A process that used a temporalio client can abort at interpreter exit ("Fatal Python error:
PyGILState_Release", temporalio/sdk-python#300). Once all output is flushed nothing is left to do,
so exiting directly keeps a success a success.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def hard_exit(code: int) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
