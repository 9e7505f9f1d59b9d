"""The callable of the burst crash drill: it notes its run id and event in $LEDGER (one line,
appended in one write) the moment it begins."""

from __future__ import annotations

import os
from typing import Any


def note(ctx: Any) -> None:
    fd = os.open(ctx.env["LEDGER"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{ctx.run_id} {ctx.event}\n".encode())
    finally:
        os.close(fd)
