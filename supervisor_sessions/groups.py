"""Rendered config text -> supervisor's own parser -> a process group added to or removed from supervisord."""
import glob
import os
import shlex

from supervisor.options import ProcessConfig, ProcessGroupConfig, ServerOptions, UnhosedConfigParser

from .naming import session_id_of_group
from .store import atomic_write


class ConfigRejected(ValueError):
    """The rendered text did not parse into exactly the one program we meant to write."""


def parse_group(options, text, group, here, command=None):
    """Parse `text` as supervisord would read it from `here` and return its ProcessGroupConfig.

    Tripwires: the text must hold exactly the section [program:<group>], and when `command` is given the
    parsed command must split back into exactly that argv.
    """
    parser = UnhosedConfigParser()
    parser.expansions = options.environ_expansions
    try:
        parser.read_string(text)
        parser.expand_here(here)
        if parser.sections() != ["program:" + group]:
            raise ConfigRejected("config for %s holds sections %r" % (group, parser.sections()))
        processes = options.processes_from_section(parser, "program:" + group, group, ProcessConfig)
    except ConfigRejected:
        raise
    except Exception as e:  # configparser and supervisor's datatypes raise many kinds
        raise ConfigRejected("config for %s does not parse: %s" % (group, e)) from None
    if len(processes) != 1:
        raise ConfigRejected("config for %s makes %d processes, not 1" % (group, len(processes)))
    if command is not None and shlex.split(processes[0].command) != list(command):
        raise ConfigRejected("config for %s does not round-trip its command" % group)
    # read_config() merges [supervisord] environment= into each program; without the same merge
    # `supervisorctl update` would see the group as changed and restart a live session.
    global_env = getattr(getattr(options.configroot, "supervisord", None), "environment", None) or {}
    for process in processes:
        process.environment = dict(global_env, **(process.environment or {}))
    return ProcessGroupConfig(options, group, processes[0].priority, processes)


def install(supervisord, config, conf_path, text):
    """Write the conf file atomically and add the group to the running supervisord."""
    atomic_write(conf_path, text.encode("utf-8"))
    options = supervisord.options
    options.process_group_configs = [c for c in options.process_group_configs if c.name != config.name]
    options.process_group_configs.append(config)
    supervisord.add_process_group(config)


def uninstall(supervisord, group, conf_path, keep_as=None):
    """Remove a stopped group from supervisord and take its conf out of the include glob: moved to
    `keep_as` when given (and its directory exists), else unlinked. False while a process still runs."""
    if group in supervisord.process_groups and not supervisord.remove_process_group(group):
        return False
    options = supervisord.options
    options.process_group_configs = [c for c in options.process_group_configs if c.name != group]
    try:
        if keep_as and os.path.isdir(os.path.dirname(keep_as)):
            os.replace(conf_path, keep_as)
        else:
            os.unlink(conf_path)
    except FileNotFoundError:
        pass
    return True


def quarantine_broken_configs(conf_dir, quarantine_dir, log):
    """Move every session conf that supervisord could not parse out of the include glob; return their paths.

    Runs before supervisord starts, since a single unparsable include file stops supervisord altogether.
    """
    options = ServerOptions()
    moved = []
    for path in sorted(glob.glob(os.path.join(conf_dir, "*.conf"))):
        group = os.path.basename(path)[:-len(".conf")]
        try:
            if session_id_of_group(group) is None:
                raise ConfigRejected("%s is not named sess-<session id>.conf" % os.path.basename(path))
            with open(path, encoding="utf-8") as f:
                parse_group(options, f.read(), group, conf_dir)
        except (ConfigRejected, OSError, UnicodeDecodeError) as e:
            os.makedirs(quarantine_dir, exist_ok=True)
            target = os.path.join(quarantine_dir, os.path.basename(path))
            os.replace(path, target)
            log("quarantined %s -> %s: %s" % (path, target, e))
            moved.append(target)
    return moved
