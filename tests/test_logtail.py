"""read_log: chunks of whole UTF-8 characters, safe for XML, from an offset or from the end."""
import pytest

from supervisor_sessions.logtail import MAX_CHUNK, read_log

# ASCII and 2-, 3- and 4-byte characters
MIXED = "".join("line %d: a é € 𝄞 ✓ ß 中文 🙂 z\n" % i for i in range(30))


@pytest.fixture
def log(tmp_path):
    return tmp_path / "session.log"


def read_all(path, length, offset=0):
    """Follow `path` from `offset` in chunks of `length` until a read returns nothing; return the text."""
    seen = []
    for _ in range(len(path.read_bytes()) + 2):  # each read that returns text moves on by at least one byte
        chunk, next_offset, overflow = read_log(str(path), offset, length)
        assert not overflow and next_offset >= offset
        if not chunk:
            return "".join(seen)
        seen.append(chunk)
        offset = next_offset
    pytest.fail("reading never reached the end")


def test_a_missing_log_reads_as_empty(log):
    assert read_log(str(log), 0, 100) == ("", 0, False)
    assert read_log(str(log), -1, 100) == ("", 0, False)
    assert read_log(str(log), 500, 100) == ("", 0, False)


def test_reading_from_zero_returns_the_text_and_the_next_offset(log):
    log.write_bytes(MIXED.encode())
    assert read_log(str(log), 0, MAX_CHUNK) == (MIXED, len(MIXED.encode()), False)


def test_reading_at_the_end_returns_nothing_and_stays_there(log):
    log.write_bytes(b"abc")
    assert read_log(str(log), 3, 10) == ("", 3, False)


@pytest.mark.parametrize("length", range(4, 8))
def test_reading_in_small_chunks_never_splits_a_character(log, length):
    log.write_bytes(MIXED.encode())
    assert read_all(log, length) == MIXED


@pytest.mark.parametrize("length", range(4, 8))
def test_every_chunk_is_at_most_length_bytes_and_ends_on_a_character(log, length):
    data = MIXED.encode()
    log.write_bytes(data)
    offset = 0
    while offset < len(data):
        chunk, next_offset, _ = read_log(str(log), offset, length)
        assert 0 < next_offset - offset <= length
        assert data[offset:next_offset].decode("utf-8") == chunk
        offset = next_offset


@pytest.mark.parametrize("length", [1, 2, 3])
@pytest.mark.xfail(strict=True, reason="BUG: a length shorter than the next character returns '' with the same "
                                       "offset, so a follower stalls before it forever")
def test_a_length_shorter_than_a_character_still_moves_on(log, length):
    log.write_bytes("a🙂b".encode())
    assert read_all(log, length) == "a🙂b"


def test_a_character_still_being_written_is_held_back_until_it_is_whole(log):
    log.write_bytes(b"ab" + "€".encode()[:2])
    assert read_log(str(log), 0, 100) == ("ab", 2, False)
    with open(log, "ab") as f:
        f.write("€".encode()[2:] + b"!")
    assert read_log(str(log), 2, 100) == ("€!", 6, False)


def test_an_offset_inside_a_character_starts_at_the_next_one(log):
    log.write_bytes("🙂x".encode())
    assert read_log(str(log), 1, 100) == ("x", 5, False)


@pytest.mark.parametrize("length", [1, 5, 12, 100])
def test_a_negative_offset_reads_the_last_bytes(log, length):
    data = b"first line\nsecond line\n"
    log.write_bytes(data)
    assert read_log(str(log), -1, length) == (data[-length:].decode(), len(data), False)


def test_reading_the_tail_skips_a_character_cut_at_its_start(log):
    log.write_bytes("a€b".encode())
    assert read_log(str(log), -1, 3) == ("b", 5, False)  # the last 3 bytes are the end of € and b


def test_reading_the_tail_continues_into_the_rotated_half(log, tmp_path):
    (tmp_path / "session.log.1").write_bytes(b"old-1\nold-2\n")
    log.write_bytes(b"new\n")
    assert read_log(str(log), -1, 10) == ("old-2\nnew\n", 4, False)
    assert read_log(str(log), 0, 10) == ("new\n", 4, False)


def test_an_offset_past_the_end_reports_overflow_and_restarts_at_zero(log):
    log.write_bytes(b"rotated\n")
    assert read_log(str(log), 1000, 4) == ("rota", 4, True)
    assert read_log(str(log), 4, 100) == ("ted\n", 8, False)


@pytest.mark.parametrize("raw, text", [
    (b"a\x00b", "a\ufffdb"), (b"\x1b[31mred\x1b[0m", "\ufffd[31mred\ufffd[0m"), (b"a\x0bb\x0c", "a\ufffdb\ufffd"),
    (b"\x01\x08\x0e\x1f", "\ufffd" * 4), ("\ufffe\uffff".encode(), "\ufffd\ufffd"),
    (b"\xed\xa0\x80", "\ufffd" * 3), (b"\xff\xfe", "\ufffd\ufffd"),
    (b"tab\tnewline\ncr\r", "tab\tnewline\ncr\r"), (b"del\x7f \xc2\x85 ok", "del\x7f \x85 ok"),
])
def test_characters_xml_cannot_carry_become_the_replacement_character(log, raw, text):
    log.write_bytes(raw)
    assert read_log(str(log), 0, 100) == (text, len(raw), False)


@pytest.mark.parametrize("offset", [0, -1])
def test_a_read_is_capped_at_max_chunk(log, offset):
    log.write_bytes(b"x" * (MAX_CHUNK + 10))
    text, next_offset, _ = read_log(str(log), offset, MAX_CHUNK * 4)
    assert len(text) == MAX_CHUNK
    assert next_offset == (MAX_CHUNK if offset == 0 else MAX_CHUNK + 10)
