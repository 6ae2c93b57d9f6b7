"""One canonical mcp.json (`mcpServers` of stdio servers) turned into the file each runtime reads.

Forms:
  canonical     <session>/.mcp.json, {"mcpServers": ...}; Claude Code reads it through --mcp-config and
                every worker finds it at $MCP_CONFIG
  agentic-flow  $HOME/.agentic-flow/mcp-config.json, {"servers": {name: {enabled, command, args, env}}}
  gemini        <session>/.gemini/settings.json, {"mcpServers": ...}
  codex         $HOME/.codex/config.toml, [mcp_servers.<name>] tables
The gemini and codex files are those runtimes' whole config: the settings their adapter asks for (see
agents/) are written into the same file. Stdlib only: the worker launcher imports it.
"""
import json
import os
import re

from .workerfiles import write_file

CANONICAL_FILE = ".mcp.json"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_servers(path):
    """The stdio servers of the canonical file as {name: {command, args, env}}; {} when there is no file."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except FileNotFoundError:
        return {}
    servers = document.get("mcpServers") if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise ValueError("%s has no 'mcpServers' object" % path)
    result = {}
    for name, server in servers.items():
        if not isinstance(server, dict) or server.get("type", "stdio") != "stdio" \
                or not isinstance(server.get("command"), str):
            raise ValueError("MCP server %r in %s is not a stdio server with a command" % (name, path))
        args = server.get("args", [])
        env = server.get("env", {})
        if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
            raise ValueError("MCP server %r: 'args' must be a list of strings" % name)
        if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
            raise ValueError("MCP server %r: 'env' must map names to strings" % name)
        result[name] = {"command": server["command"], "args": args, "env": env}
    return result


def fill_placeholders(value, environ, missing):
    """Replace ${VAR} in every string of `value` from `environ`; names not set are added to `missing`."""
    if isinstance(value, str):
        def substitute(match):
            if match.group(1) not in environ:
                missing.add(match.group(1))
            return environ.get(match.group(1), "")
        return _PLACEHOLDER.sub(substitute, value)
    if isinstance(value, list):
        return [fill_placeholders(v, environ, missing) for v in value]
    if isinstance(value, dict):
        return {k: fill_placeholders(v, environ, missing) for k, v in value.items()}
    return value


def _toml_string(text):
    return json.dumps(text)  # a JSON string literal is a valid TOML basic string


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _toml_string(str(value))


def _toml_settings(settings, prefix=()):
    """TOML of nested dicts: a table's plain keys first, then its sub-tables."""
    lines = ["%s = %s" % (_toml_string(k), _toml_value(v)) for k, v in settings.items() if not isinstance(v, dict)]
    for key, value in settings.items():
        if isinstance(value, dict):
            path = prefix + (key,)
            lines += ["", "[%s]" % ".".join(_toml_string(p) for p in path)] + _toml_settings(value, path)
    return lines


def _codex_toml(servers, settings):
    lines = _toml_settings(settings) + [""] if settings else []
    for name, server in servers.items():
        lines.append("[mcp_servers.%s]" % _toml_string(name))
        lines.append("command = %s" % _toml_string(server["command"]))
        lines.append("args = [%s]" % ", ".join(_toml_string(a) for a in server["args"]))
        if server["env"]:
            lines.append("[mcp_servers.%s.env]" % _toml_string(name))
            lines.extend("%s = %s" % (_toml_string(k), _toml_string(v)) for k, v in server["env"].items())
        lines.append("")
    return "\n".join(lines)


def _render(form, servers, settings):
    """(relative path under the session dir, text) of one form, with the runtime's `settings` in it."""
    if form == "agentic-flow":
        body = {"servers": {n: dict(s, enabled=True) for n, s in servers.items()}}
        return os.path.join(".agentic-flow", "mcp-config.json"), json.dumps(body, indent=2)
    if form == "gemini":
        return os.path.join(".gemini", "settings.json"), json.dumps(dict(settings, mcpServers=servers), indent=2)
    if form == "codex":
        return os.path.join(".codex", "config.toml"), _codex_toml(servers, settings)
    raise ValueError("unknown MCP form %r" % form)


FORMS = ("agentic-flow", "gemini", "codex")


def write_forms(servers, session_dir, forms, settings=None):
    """Write the canonical file and each requested form under `session_dir` (the worker's HOME), 0600;
    `settings` ({form: settings}) go into the forms that are a runtime's whole config."""
    written = []
    outputs = [(CANONICAL_FILE, json.dumps({"mcpServers": servers}, indent=2))]
    outputs += [_render(form, servers, (settings or {}).get(form, {})) for form in forms]
    for relative, text in outputs:
        write_file(session_dir, relative, text.encode("utf-8"))
        written.append(os.path.join(session_dir, relative))
    return written
