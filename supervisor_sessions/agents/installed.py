"""Which agent CLIs are installed, and their versions (read from their npm package.json: nothing is run)."""
import json
import os
import shutil

_versions = {}   # (real path, mtime) -> version


def version_of(path, package):
    """The version of npm `package` that the program at `path` belongs to, or None."""
    real = os.path.realpath(path)
    try:
        key = (real, os.stat(real).st_mtime)
    except OSError:
        return None
    if key not in _versions:
        _versions[key] = _package_version(os.path.dirname(real), package) if package else None
    return _versions[key]


def _package_version(directory, package):
    while directory != os.path.dirname(directory):
        try:
            with open(os.path.join(directory, "package.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            if isinstance(manifest, dict) and manifest.get("name") == package:
                return str(manifest.get("version", ""))[:40] or None
        except (OSError, ValueError):
            pass
        directory = os.path.dirname(directory)
    return None


def runtime_report(adapter, path):
    """{runtime, program, installed, version, supports} of one runtime on PATH `path`."""
    found = shutil.which(adapter.program, path=path) if adapter.program else None
    return {"runtime": adapter.runtime, "program": adapter.program, "installed": found is not None,
            "version": version_of(found, adapter.package) if found else None,
            "supports": adapter.capabilities.as_dict()}
