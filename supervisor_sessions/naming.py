"""The session-id format and the group names built from it: the only place ids are validated."""
import re
import uuid

GROUP_PREFIX = "sess-"
_SESSION_ID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


def new_session_id():
    """A fresh session id: a random UUID in its canonical lower-case form."""
    return str(uuid.uuid4())


def is_session_id(value):
    """True when `value` is a well-formed session id (safe to use in a path or a config)."""
    return isinstance(value, str) and _SESSION_ID.match(value) is not None


def group_name(session_id):
    """The supervisord group (and program) name of a session."""
    return GROUP_PREFIX + session_id


def session_id_of_group(name):
    """The session id behind a group name, or None when the group is not a session's."""
    if name.startswith(GROUP_PREFIX) and is_session_id(name[len(GROUP_PREFIX):]):
        return name[len(GROUP_PREFIX):]
    return None
