"""Jinja rendering of session program sections: one template per runtime in templates/runtimes/.

A runtime template extends `session.conf.j2` (the program section) and sets three variables that the
plugin reads back as Python objects, so user text never passes through rendered text:
  argv       the worker's command line (a list; may use `task`, `agent`, `provider`, `session_dir`, ...)
  secrets    names of environment variables the worker inherits from supervisord (its keys)
  mcp_forms  the MCP configuration files the runtime reads (see mcp.py)
  exclusive  (optional) resources two live sessions may not hold at once, e.g. "tcp:3000" or "gpu:0":
             a session that needs one that is held waits in the queue
"""
import os
import re
import shlex
from dataclasses import dataclass

import jinja2

from .settings import resource_dir

RUNTIME_SUFFIX = ".conf.j2"
# Which variables carry a provider's key. A runtime passes `provider_keys[provider]` as its secrets.
PROVIDER_KEYS = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GOOGLE_GEMINI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "google": ("GOOGLE_GEMINI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "openai": ("OPENAI_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "requesty": ("REQUESTY_API_KEY",),
    "onnx": ("USE_ONNX",),
}
_INLINE_COMMENT = re.compile(r"(^|\s)[;#]")
_PROBE = {"session_id": "probe", "group": "probe", "session_dir": "/probe", "task_file": "/probe/task",
          "log_file": "/probe/log", "agent": "probe", "task": "probe", "provider": "probe", "name": "", "port": 1,
          "command": ["probe"], "log_max_bytes": 1024, "stop_wait_secs": 1, "agent_events": False}


def ini_value(value):
    """Make `value` safe as one supervisor config value, or raise ValueError (never silently alter it)."""
    text = str(value)
    if any(c in text for c in "\r\n\0"):
        raise ValueError("config value contains a line break or NUL: %r" % text[:80])
    if "%" in text:
        raise ValueError("config value contains '%%', which supervisor would expand: %r" % text[:80])
    if text != text.strip() or not text:
        raise ValueError("config value is empty or has surrounding whitespace: %r" % text[:80])
    if _INLINE_COMMENT.search(text):
        raise ValueError("config value contains a ';' or '#' that would start a comment: %r" % text[:80])
    return text


def shell_join(argv):
    """Quote an argv list the way supervisor's shlex.split reads it back."""
    return " ".join(shlex.quote(str(a)) for a in argv)


@dataclass(frozen=True)
class Rendered:
    ini: str
    argv: list
    secrets: tuple
    mcp_forms: tuple
    exclusive: tuple


class Renderer:
    """Loads the templates once and renders a runtime's program section for a session.

    `overlay` is a directory of the user's (SESSIONS_TEMPLATES_DIR) searched before the built-in
    templates: its runtimes/*.conf.j2 add runtimes or replace built-in ones.
    """

    def __init__(self, overlay=None):
        self.templates_dirs = [d for d in (overlay, resource_dir("templates")) if d and os.path.isdir(d)]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.templates_dirs),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        self.env.filters["ini_value"] = ini_value
        self.env.filters["shell_join"] = shell_join
        self.env.globals["provider_keys"] = PROVIDER_KEYS
        self.runtimes = frozenset(
            name[:-len(RUNTIME_SUFFIX)] for directory in self.templates_dirs
            if os.path.isdir(os.path.join(directory, "runtimes"))
            for name in os.listdir(os.path.join(directory, "runtimes")) if name.endswith(RUNTIME_SUFFIX))

    def render(self, runtime, context):
        """Render `runtime` with `context`; return the ini text and the runtime's declarations."""
        module = self.env.get_template("runtimes/%s%s" % (runtime, RUNTIME_SUFFIX)).make_module(vars=context)
        argv = list(getattr(module, "argv", ()))
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("runtime %s must set argv to a non-empty list of strings" % runtime)
        exclusive = tuple(getattr(module, "exclusive", ()))
        if not all(isinstance(e, str) and e for e in exclusive):
            raise ValueError("runtime %s must set exclusive to a list of resource names" % runtime)
        return Rendered(ini=str(module), argv=argv,
                        secrets=tuple(getattr(module, "secrets", ())),
                        mcp_forms=tuple(getattr(module, "mcp_forms", ())), exclusive=exclusive)

    def program(self, runtime):
        """The program `runtime` runs (its argv[0]), from a rendering for a stand-in session; "" when the
        template does not render without a real one."""
        try:
            return self.render(runtime, _PROBE).argv[0]
        except Exception:  # a user's template may need anything
            return ""

    def render_file(self, name, context):
        """Render a plain template (such as supervisord.conf.j2) to text."""
        return self.env.get_template(name).render(context)
