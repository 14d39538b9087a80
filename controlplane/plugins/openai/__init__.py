"""OpenAI: chat completions through the official client (the 'openai' extra, imported lazily)."""

from controlplane.plugins.openai.chat import ChatCompletion

PLUGINS = (ChatCompletion,)

__all__ = ["PLUGINS"]
