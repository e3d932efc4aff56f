"""fusebench: an evaluation-first benchmark harness for chat LLMs."""

__version__ = "0.1.0"
