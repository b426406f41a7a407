"""Policies: scripted teams for the multi-agent env."""

from .teams import GreedyTeam, OracleTeam, RandomTeam, TeamPolicy, TriageTeam

__all__ = ["GreedyTeam", "OracleTeam", "RandomTeam", "TeamPolicy", "TriageTeam"]
