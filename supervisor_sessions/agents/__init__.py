"""One adapter per agent runtime (how its CLI runs, what its output means, what it can do): adding an agent
is one module here and one template in templates/runtimes/. A runtime without an adapter (a user's own
template) is run as a plain process."""
from . import claude, codex, gemini, plain
from .base import Adapter

ADAPTERS = {a.runtime: a for a in (claude.ADAPTER, codex.ADAPTER, gemini.ADAPTER, plain.AGENTIC_FLOW, plain.SHELL)}


def adapter_for(runtime, program=None):
    """The adapter of `runtime`; for a runtime of the user's own, a plain one for its `program`."""
    return ADAPTERS.get(runtime) or Adapter(runtime=runtime, program=program or "")
