"""Text-generation backends for teachers and prompting baselines: OpenAI-compatible endpoints, local
models."""

from leap_gym.agents.backends.local_chat import LocalChat
from leap_gym.agents.backends.openai_chat import BackendError, ChatResult, OpenAIChat, Usage

__all__ = ["BackendError", "ChatResult", "LocalChat", "OpenAIChat", "Usage"]
