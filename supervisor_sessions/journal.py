"""The change feed's journal: every change of a session as an event with the next sequence number, appended
to $SESSIONS_HOME/state/events.jsonl and kept in memory for readers.

`seq` starts at 1, grows by one per event and never repeats, across restarts too: the next number comes
from the last line on disk. Each append is written at once (a killed supervisord loses nothing that was
written); `sync()` makes them durable, which the plugin calls before acknowledging a create and on its
ticks. The journal keeps the newest `retain` events; older ones are dropped when it is reopened.
"""
import json
import os

from .faults import EventsGone, StorageFull
from .store import DISK_ERRORS


class Journal:
    """Append-only events with sequence numbers; `after(seq, limit)` serves readers from memory."""

    def __init__(self, path, retain=100_000):
        self.path = path
        self.retain = retain
        self.events, lines = self._load()
        self.next_seq = self.events[-1]["seq"] + 1 if self.events else 1
        if lines > 2 * retain:
            self._rewrite()
        self._file = open(path, "a", encoding="utf-8")
        if self._file.tell() and not self._ends_with_newline():
            self._file.write("\n")  # end a line a crash cut short, so the next event starts its own
        self._unsynced = False

    def _ends_with_newline(self):
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def _load(self):
        """(the newest `retain` events on disk, how many lines the file holds)."""
        events, lines = [], 0
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    lines += 1
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a crash
                    if isinstance(event, dict) and isinstance(event.get("seq"), int):
                        events.append(event)
        except FileNotFoundError:
            pass
        return events[-self.retain:], lines

    def _rewrite(self):
        """Replace the file by one that holds only the retained events."""
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(_line(e) for e in self.events)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def append(self, event_type, session_id, time_ms, **fields):
        """Record one event; return it (with its seq)."""
        event = dict(fields, seq=self.next_seq, type=event_type, sessionId=session_id, time=time_ms)
        try:
            self._file.write(_line(event))
            self._file.flush()
        except OSError as e:
            if e.errno in DISK_ERRORS:
                raise StorageFull("cannot append to the event journal: %s" % os.strerror(e.errno)) from None
            raise
        self.next_seq += 1
        self._unsynced = True
        self.events.append(event)
        if len(self.events) > 2 * self.retain:
            del self.events[:len(self.events) - self.retain]
        return event

    def sync(self):
        """Make every appended event durable (fsync), if any is not yet."""
        if self._unsynced:
            os.fsync(self._file.fileno())
            self._unsynced = False

    @property
    def oldest(self):
        """The seq of the oldest event kept (next_seq when none is)."""
        return self.events[0]["seq"] if self.events else self.next_seq

    def since(self, seq, limit):
        """Events from seq `seq` on (0 or 1: from the first), at most `limit`. Raise EventsGone when some of
        those are no longer kept."""
        seq = max(seq, 1)
        if seq < self.oldest:
            raise EventsGone(self.oldest)
        start = seq - self.oldest
        return self.events[start:start + limit]

    def close(self):
        self.sync()
        self._file.close()


def _line(event):
    return json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n"
