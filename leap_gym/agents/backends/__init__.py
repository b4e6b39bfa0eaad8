"""Text-generation backends for teachers and prompting baselines (OpenAI-compatible chat endpoints)."""

from leap_gym.agents.backends.openai_chat import BackendError, ChatResult, OpenAIChat, Usage

__all__ = ["BackendError", "ChatResult", "OpenAIChat", "Usage"]
