"""mcp: the canonical mcp.json read, its placeholders filled, and written in the form each runtime reads."""
import json
import os
import stat
import tomllib

import pytest

from supervisor_sessions import mcp

SERVERS = {
    "fs": {"command": "mcp-fs", "args": ["/data", "--read-only"], "env": {"TOKEN": "t0k"}},
    "bare": {"command": "mcp-bare", "args": [], "env": {}},
    'odd "name" \\ é': {"command": "C:\\tools\\x.exe", "args": ['a"b', "back\\slash", "é ✓ €", "tab\tnl\n"],
                        "env": {"QUOTE": 'say "hi"', "PATH_X": "\\\\server\\share", "U": "ü"}},
}


def write_json(path, document):
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ---- load_servers ---------------------------------------------------------------------------------------------

def test_a_missing_canonical_file_means_no_servers(tmp_path):
    assert mcp.load_servers(str(tmp_path / "none.json")) == {}


def test_stdio_servers_load_with_defaults_and_without_other_keys(tmp_path):
    path = write_json(tmp_path / "mcp.json", {"mcpServers": {
        "a": {"command": "x"},
        "b": {"type": "stdio", "command": "y", "args": ["1"], "env": {"K": "v"}, "cwd": "/tmp", "timeout": 5}}})
    assert mcp.load_servers(path) == {"a": {"command": "x", "args": [], "env": {}},
                                      "b": {"command": "y", "args": ["1"], "env": {"K": "v"}}}


@pytest.mark.parametrize("document, words", [
    ([], "has no 'mcpServers' object"),
    ({}, "has no 'mcpServers' object"),
    ({"servers": {}}, "has no 'mcpServers' object"),
    ({"mcpServers": []}, "has no 'mcpServers' object"),
    ({"mcpServers": {"s": "mcp-fs"}}, "MCP server 's' in"),
    ({"mcpServers": {"h": {"type": "http", "url": "http://x"}}}, "MCP server 'h' in"),
    ({"mcpServers": {"h": {"type": "sse", "command": "x"}}}, "is not a stdio server with a command"),
    ({"mcpServers": {"h": {"type": "streamable-http", "command": "x"}}}, "is not a stdio server with a command"),
    ({"mcpServers": {"s": {"args": ["x"]}}}, "is not a stdio server with a command"),
    ({"mcpServers": {"s": {"command": ["npx", "x"]}}}, "is not a stdio server with a command"),
    ({"mcpServers": {"s": {"command": "x", "args": "-y"}}}, "MCP server 's': 'args' must be a list of strings"),
    ({"mcpServers": {"s": {"command": "x", "args": ["-y", 1]}}}, "'args' must be a list of strings"),
    ({"mcpServers": {"s": {"command": "x", "env": ["K=v"]}}}, "MCP server 's': 'env' must map names to strings"),
    ({"mcpServers": {"s": {"command": "x", "env": {"K": 1}}}}, "'env' must map names to strings"),
])
def test_a_bad_canonical_file_is_refused_clearly(tmp_path, document, words):
    path = write_json(tmp_path / "mcp.json", document)
    with pytest.raises(ValueError) as info:
        mcp.load_servers(path)
    assert words in str(info.value)


@pytest.mark.parametrize("servers", [None, {"s": {"type": "http", "url": "http://x"}}])
def test_a_canonical_file_of_the_wrong_shape_is_named_in_the_error(tmp_path, servers):
    path = write_json(tmp_path / "mcp.json", {"mcpServers": servers})
    with pytest.raises(ValueError) as info:
        mcp.load_servers(path)
    assert path in str(info.value)


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe{}"])
def test_a_canonical_file_that_is_not_json_raises_value_error(tmp_path, content):
    (tmp_path / "mcp.json").write_bytes(content)
    with pytest.raises(ValueError):
        mcp.load_servers(str(tmp_path / "mcp.json"))


@pytest.mark.xfail(strict=True, reason="a JSON syntax error surfaces as json's bare 'Expecting ...' message, which "
                                       "does not say which file is broken (the launcher logs only that)")
def test_a_canonical_file_that_is_not_json_is_named_in_the_error(tmp_path):
    (tmp_path / "mcp.json").write_text("{not json")
    with pytest.raises(ValueError) as info:
        mcp.load_servers(str(tmp_path / "mcp.json"))
    assert str(tmp_path / "mcp.json") in str(info.value)


# ---- fill_placeholders ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, filled, missing", [
    ("${A}", "1", set()),
    ("x-${A}-${B}-${A}", "x-1-two-1", set()),
    ("${NOPE}", "", {"NOPE"}),
    ("${A}${NOPE}${ALSO_NOT}", "1", {"NOPE", "ALSO_NOT"}),
    ("$A ${} ${1X} ${A B} $${A}", "$A ${} ${1X} ${A B} $1", set()),
    (["${A}", ["${B}", {"k": "${NOPE}"}]], ["1", ["two", {"k": ""}]], {"NOPE"}),
    ({"${A}": "${A}", "n": 5, "t": True, "z": None}, {"${A}": "1", "n": 5, "t": True, "z": None}, set()),
    ({"s": {"command": "${B}", "args": ["--token=${TOKEN}"], "env": {"K": "${EMPTY}"}}},
     {"s": {"command": "two", "args": ["--token="], "env": {"K": ""}}}, {"TOKEN"}),
])
def test_placeholders_are_filled_and_missing_names_collected(value, filled, missing):
    seen = set()
    assert mcp.fill_placeholders(value, {"A": "1", "B": "two", "EMPTY": ""}, seen) == filled
    assert seen == missing


def test_filling_placeholders_leaves_the_input_as_it_was():
    value = {"s": {"args": ["${A}"]}}
    mcp.fill_placeholders(value, {"A": "1"}, set())
    assert value == {"s": {"args": ["${A}"]}}


def test_a_filled_value_is_not_filled_again():
    assert mcp.fill_placeholders("${A}", {"A": "${B}", "B": "no"}, set()) == "${B}"


# ---- write_forms ----------------------------------------------------------------------------------------------

def read_agentic_flow(home):
    return json.loads((home / ".agentic-flow" / "mcp-config.json").read_text(encoding="utf-8"))


def read_gemini(home):
    return json.loads((home / ".gemini" / "settings.json").read_text(encoding="utf-8"))


def read_codex(home):
    return tomllib.loads((home / ".codex" / "config.toml").read_text(encoding="utf-8"))


def expected_agentic_flow(servers):
    return {"servers": {name: {"enabled": True, "command": s["command"], "args": s["args"], "env": s["env"]}
                        for name, s in servers.items()}}


def expected_codex(servers):
    return {"mcp_servers": {name: dict({"command": s["command"], "args": s["args"]},
                                       **({"env": s["env"]} if s["env"] else {}))
                            for name, s in servers.items()}} if servers else {}


FORMS = {
    "agentic-flow": (".agentic-flow/mcp-config.json", read_agentic_flow, expected_agentic_flow),
    "gemini": (".gemini/settings.json", read_gemini, lambda servers: {"mcpServers": servers}),
    "codex": (".codex/config.toml", read_codex, expected_codex),
}


def test_every_form_has_a_reader_here():
    assert set(FORMS) == set(mcp.FORMS)


def test_without_forms_only_the_canonical_file_is_written(tmp_path):
    assert mcp.write_forms(SERVERS, str(tmp_path), []) == [str(tmp_path / ".mcp.json")]
    assert json.loads((tmp_path / ".mcp.json").read_text(encoding="utf-8")) == {"mcpServers": SERVERS}
    assert mode(tmp_path / ".mcp.json") == 0o600
    assert os.listdir(tmp_path) == [".mcp.json"]


@pytest.mark.parametrize("servers", [SERVERS, {}], ids=["servers", "none"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_form_is_written_as_its_runtime_reads_it(tmp_path, form, servers):
    relative, read, expected = FORMS[form]
    written = mcp.write_forms(servers, str(tmp_path), [form])
    assert written == [str(tmp_path / ".mcp.json"), str(tmp_path / relative)]
    assert all(mode(path) == 0o600 for path in written)
    assert json.loads((tmp_path / ".mcp.json").read_text(encoding="utf-8")) == {"mcpServers": servers}
    assert read(tmp_path) == expected(servers)


def test_all_forms_at_once_write_one_file_each(tmp_path):
    written = mcp.write_forms(SERVERS, str(tmp_path), mcp.FORMS)
    assert sorted(written) == sorted([str(tmp_path / ".mcp.json")] + [str(tmp_path / FORMS[f][0]) for f in mcp.FORMS])


def test_writing_again_replaces_the_previous_files(tmp_path):
    mcp.write_forms(SERVERS, str(tmp_path), mcp.FORMS)
    mcp.write_forms({"only": {"command": "x", "args": [], "env": {}}}, str(tmp_path), mcp.FORMS)
    assert list(read_codex(tmp_path)["mcp_servers"]) == ["only"]
    assert list(read_gemini(tmp_path)["mcpServers"]) == ["only"]


NON_BMP_BUG = pytest.mark.xfail(strict=True, reason=(
    "BUG: _toml_string uses json.dumps, which writes a non-BMP character as a surrogate-pair escape "
    "(\\ud834\\udd1e); TOML allows only scalar values in escapes, so codex cannot read its config"))


@pytest.mark.parametrize("text", [
    "é ✓ €", "\x7f", "\x00\x1b\t\n", "\u2028", 'q"b\\',
    pytest.param("𝄞", marks=NON_BMP_BUG), pytest.param("🙂 emoji", marks=NON_BMP_BUG),
])
def test_codex_toml_carries_any_string(tmp_path, text):
    servers = {text: {"command": text, "args": [text], "env": {"K": text}}}
    mcp.write_forms(servers, str(tmp_path), ["codex"])
    assert read_codex(tmp_path) == expected_codex(servers)


def test_an_unknown_form_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown MCP form 'vscode'"):
        mcp.write_forms(SERVERS, str(tmp_path), ["vscode"])
