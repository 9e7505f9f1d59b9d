"""What a command's environment says about its run: EVMAN_* and its run parameters."""

from __future__ import annotations

from collections.abc import Mapping

from evman.engine.coordination.params import env_of


def run_env(
    event: str, run_id: int, attempt: int, scheduled_for: str | None, params: Mapping[str, str] | None = None
) -> dict[str, str]:
    """EVMAN_EVENT, EVMAN_RUN_ID, EVMAN_ATTEMPT, EVMAN_SCHEDULED_FOR, and EVMAN_PARAM_<NAME> for
    each run parameter."""
    return {
        "EVMAN_EVENT": event,
        "EVMAN_RUN_ID": str(run_id),
        "EVMAN_ATTEMPT": str(attempt),
        "EVMAN_SCHEDULED_FOR": scheduled_for or "",
        **env_of(params),
    }
