"""Runtimes whose output is only a log: agentic-flow (no structured output on its task path) and shell."""
from .base import Adapter

AGENTIC_FLOW = Adapter(runtime="agentic-flow", program="agentic-flow", package="agentic-flow",
                       endpoint_env=("ANTHROPIC_BASE_URL",))
SHELL = Adapter(runtime="shell", program="bash")
