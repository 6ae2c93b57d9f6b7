"""Reading a session log in chunks that are whole UTF-8 characters (and, for XML-RPC, safe to send as XML)."""
import os
import re

MAX_CHUNK = 1024 * 1024
# XML 1.0 cannot carry these; a worker's output may hold them (colour codes, NUL, lone surrogates).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _incomplete_tail(data):
    """How many bytes at the end of `data` begin a UTF-8 character that is not complete yet."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte or ASCII
            needed = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
            return back if needed > back else 0
    return 0


def _tail_of(path, length):
    """The last `length` bytes of `path` (b"" when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - length))
            return f.read(length)
    except FileNotFoundError:
        return b""


def read_log(path, offset, length, for_xml=True):
    """(text, next_offset, overflow) of up to `length` bytes of `path` from `offset` (< 0: the last bytes).
    With `for_xml`, what XML cannot carry (colour codes' ESC, NUL, ...) becomes U+FFFD; JSON, SSE and plain
    text carry it as written.

    The log rotates once at its cap into `path`.1. Read from the end, the text continues into that
    previous part when the current one is shorter than `length`. `overflow` is true when the file is
    shorter than `offset`, that is, it rotated and the bytes in between are no longer followed; reading
    then restarts at 0. A missing file reads as empty.
    """
    length = min(length, MAX_CHUNK)
    from_end = offset < 0
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            overflow = offset > size
            if from_end:
                offset = max(0, size - length)
            elif overflow:
                offset = 0
            f.seek(offset)
            data = f.read(length)
    except FileNotFoundError:
        return "", 0, False
    previous = _tail_of(path + ".1", length - len(data)) if from_end and len(data) < length else b""
    data = previous + data
    skip = 0
    while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
        skip += 1  # started inside a character: begin at the next one
    end = len(data) - _incomplete_tail(data[skip:]) if len(data) > skip else len(data)
    text = data[skip:end].decode("utf-8", "replace")
    return _NOT_XML.sub("\ufffd", text) if for_xml else text, max(offset, offset + end - len(previous)), overflow
