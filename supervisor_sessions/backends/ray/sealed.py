"""Secrets on their way through Ray: sealed (Fernet: AES-128-CBC and HMAC-SHA256) with a key that the API
side and every node read from a file of their own (SESSIONS_RAY_KEY_FILE), never from Ray. What Ray carries,
logs or shows of a launch is ciphertext; a node without the key cannot run a session that has secrets."""
import base64
import hashlib
import json

from ...settings import ensure_secret

KEY_FILE_ENV = "SESSIONS_RAY_KEY_FILE"


def ensure_key(path):
    """The key made from the secret kept in `path` (generated once, mode 0600)."""
    return _as_key(ensure_secret("", path)[0])


def load_key(path):
    """The key made from the secret in `path`; ValueError saying what is wrong when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.read().strip()
    except OSError as e:
        raise ValueError("cannot read the key of sealed secrets (%s=%s): %s" % (KEY_FILE_ENV, path, e.strerror)) from None
    if len(secret) < 32:
        raise ValueError("the secret in %s (%s) is shorter than 32 characters" % (path, KEY_FILE_ENV))
    return _as_key(secret)


def _as_key(secret):
    """Fernet's key (32 bytes, urlsafe base64) from a secret of any length."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode("utf-8")).digest())


def seal(key, value):
    """`value` (JSON-able) as a sealed token."""
    from cryptography.fernet import Fernet
    return Fernet(key).encrypt(json.dumps(value).encode("utf-8")).decode("ascii")


def unseal(key, token):
    """The value of a token `seal` made with the same key; ValueError when it was not (or was changed)."""
    from cryptography.fernet import Fernet, InvalidToken
    try:
        return json.loads(Fernet(key).decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError) as e:
        raise ValueError("sealed secrets that this node's key does not open (%s)" % type(e).__name__) from None
