"""Jinja rendering of session program sections: one template per runtime in templates/runtimes/.

A runtime template extends `session.conf.j2` (the program section) and sets three variables that the
plugin reads back as Python objects, so user text never passes through rendered text:
  argv       the worker's command line (a list; may use `task`, `agent`, `provider`, `session_dir`, ...)
  secrets    names of environment variables the worker inherits from supervisord (its keys)
  mcp_forms  the MCP configuration files the runtime reads (see mcp.py)
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


class Renderer:
    """Loads the templates once and renders a runtime's program section for a session."""

    def __init__(self, templates_dir=None):
        self.templates_dir = templates_dir or resource_dir("templates")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.templates_dir),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        self.env.filters["ini_value"] = ini_value
        self.env.filters["shell_join"] = shell_join
        self.env.globals["provider_keys"] = PROVIDER_KEYS
        runtimes_dir = os.path.join(self.templates_dir, "runtimes")
        self.runtimes = frozenset(n[:-len(RUNTIME_SUFFIX)] for n in os.listdir(runtimes_dir)
                                  if n.endswith(RUNTIME_SUFFIX))

    def render(self, runtime, context):
        """Render `runtime` with `context`; return the ini text and the runtime's declarations."""
        module = self.env.get_template("runtimes/%s%s" % (runtime, RUNTIME_SUFFIX)).make_module(vars=context)
        argv = list(getattr(module, "argv", ()))
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("runtime %s must set argv to a non-empty list of strings" % runtime)
        return Rendered(ini=str(module), argv=argv,
                        secrets=tuple(getattr(module, "secrets", ())),
                        mcp_forms=tuple(getattr(module, "mcp_forms", ())))

    def render_file(self, name, context):
        """Render a plain template (such as supervisord.conf.j2) to text."""
        return self.env.get_template(name).render(context)
