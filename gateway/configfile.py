"""Which gateway.yaml a command uses: one order for every command that needs settings.

    1  --config FILE            on the command line
    2  $CRMGW_CONFIG            in the environment
    3  ./gateway.yaml           in the current folder (``crmgw init DIR`` writes one)

The command says on stderr which one it used (``crmgw: settings from gateway.yaml (./gateway.yaml)``),
so a command that reads the wrong file (another journal, another Redis) is visible at once. Kept free
of heavy imports: crmgw's parser is built for every command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.settings import Settings

ENV = "CRMGW_CONFIG"
LOCAL = "gateway.yaml"
CONFIG_HELP = f"gateway.yaml (default: ${ENV}, else ./{LOCAL})"
NOT_FOUND = (
    f"no settings: give --config FILE, set {ENV}, or run in a folder with a {LOCAL} "
    "(`crmgw init DIR --crm-url URL` writes one)"
)


def find_config(
    given: str | None, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[Path, str] | None:
    """(path, how it was found) or None; does not check that the file can be read."""
    environ = os.environ if environ is None else environ
    if given:
        return Path(given), "--config"
    if environ.get(ENV):
        return Path(environ[ENV]), f"${ENV}"
    local = (cwd or Path.cwd()) / LOCAL
    if local.is_file():
        return Path(LOCAL), f"./{LOCAL} in the current folder"
    return None


def settings_for(given: str | None, command: str = "crmgw") -> Settings | None:
    """The loaded settings for a command (gateway.settings.Settings), or None after printing why:
    no file found, or every problem in it (``file:line:col`` or the environment variable)."""
    from gateway.settings import load_settings

    path = config_path(given, command)
    if path is None:
        return None
    settings, errors = load_settings(path)
    for e in errors:
        print(e, file=sys.stderr)
    return settings


def config_path(given: str | None, command: str = "crmgw") -> Path | None:
    """The settings file for a command, said on stderr; None (after saying why) when there is none."""
    found = find_config(given)
    if found is None:
        print(f"{command}: {NOT_FOUND}", file=sys.stderr)
        return None
    path, how = found
    print(f"{command}: settings from {path} ({how})", file=sys.stderr)
    return path
