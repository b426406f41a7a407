"""Adaptive Alert Triage: a simulator of IT alert triage and incident response.

Importing the package registers ``AdaptiveAlertTriage-v0`` with PettingZoo's
registry (parallel and AEC) and with Gymnasium's (the single env, with the
native vector env as its ``vector_entry_point``).
"""

from __future__ import annotations

__version__ = "0.2.0"

ENV_ID = "AdaptiveAlertTriage-v0"


def _register() -> None:
    import gymnasium
    import pettingzoo

    for kind, entry in (("parallel", "parallel_env"), ("aec", "env")):
        registry = pettingzoo.env_registry.registration._get_registry(kind)
        if ENV_ID not in registry:
            pettingzoo.register(
                kind, ENV_ID, entry_point=f"adaptive_alert_triage.multiagent:{entry}"
            )
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=ENV_ID,
            entry_point="adaptive_alert_triage.gym_env:AlertTriageGymEnv",
            vector_entry_point="adaptive_alert_triage.gym_env:AlertTriageVectorEnv",
        )


_register()
