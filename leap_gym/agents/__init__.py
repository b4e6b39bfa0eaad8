"""Agents: students (LLMs acting from the student view), teachers (correcting with privileged state),
backends."""

from leap_gym.agents.base import Agent, AgentOutput, BatchAgent, TrajectoryAgent

__all__ = ["Agent", "AgentOutput", "BatchAgent", "TrajectoryAgent"]
