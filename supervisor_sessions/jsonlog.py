"""One JSON object per log line, for the logs of our own programs (no secrets are ever passed in)."""
import datetime
import json
import logging

from supervisor import loggers

EVENTS_LOG_MAX_BYTES = 10 * 1024 * 1024
EVENTS_LOG_BACKUPS = 3


def timestamp():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message"} plus the record's `fields` (passed as extra={"fields": ...})."""

    def format(self, record):
        line = {"time": timestamp(), "level": record.levelname.lower(), "logger": record.name,
                "message": record.getMessage()}
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def use_json_lines():
    """Make every log line of this process a JSON object on stderr (supervisord rotates that log)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


class EventLog:
    """Session events of the plugin, one JSON line each, in a file that supervisor's own handler rotates."""

    def __init__(self, path):
        self.logger = loggers.getLogger(loggers.LevelsByName.INFO)
        loggers.handle_file(self.logger, path, "%(message)s\n", rotating=True, maxbytes=EVENTS_LOG_MAX_BYTES,
                            backups=EVENTS_LOG_BACKUPS)

    def write(self, event, **fields):
        self.logger.info(json.dumps(dict({"time": timestamp(), "event": event}, **fields), ensure_ascii=False))

    def close(self):
        self.logger.close()
