"""Adaptive Alert Triage: a simulator of IT alert triage and incident response.

Importing the package registers ``AdaptiveAlertTriage-v0`` with PettingZoo's
registry (parallel and AEC).
"""

from __future__ import annotations

__version__ = "0.2.0"


def _register() -> None:
    import pettingzoo

    for kind, entry in (("parallel", "parallel_env"), ("aec", "env")):
        registry = pettingzoo.env_registry.registration._get_registry(kind)
        if "AdaptiveAlertTriage-v0" not in registry:
            pettingzoo.register(
                kind,
                "AdaptiveAlertTriage-v0",
                entry_point=f"adaptive_alert_triage.multiagent:{entry}",
            )


_register()
