"""The configuration file: defaults for the command line, read when a command runs.

The nearest of these, from the working directory up, is read (in one folder, `tui-flow.toml`
is taken over `pyproject.toml`):

    tui-flow.toml                     pyproject.toml
    db = ".tui-flow/runs.db"          [tool.tui-flow]
    max-concurrency = 4               max-concurrency = 4
    executor = "local"                executor = "dask"
    scheduler = "tcp://host:8786"     scheduler = "tcp://host:8786"
    log-level = "debug"               log-level = "debug"
    otel = "otlp"                     otel = "otlp"
    [set]                             [tool.tui-flow.set]
    records = 100000                  records = 100000

The command line wins, then the environment ($TUI_FLOW_DB, $TUI_FLOW_MAX_CONCURRENCY,
$TUI_FLOW_EXECUTOR, $TUI_FLOW_DASK_SCHEDULER, $TUI_FLOW_SET as a JSON object,
$TUI_FLOW_LOG_LEVEL, $TUI_FLOW_OTEL), then the file. A
relative `db` in the file is relative to the file's folder; `set` holds initial context values
that `--set` overrides key by key. A file or a variable that cannot be used is one line naming
it (and the key), exit code 2.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, JsonValue, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..errors import BadInput

FILE_NAME = "tui-flow.toml"
TABLE = ("tool", "tui-flow")  # in pyproject.toml
ENV_PREFIX = "TUI_FLOW_"
# a key of the file (`-` or `_` alike) -> its setting (whose variable is $TUI_FLOW_<SETTING>)
KEYS: dict[str, str] = {
    "db": "db",
    "max_concurrency": "max_concurrency",
    "executor": "executor",
    "scheduler": "dask_scheduler",  # as the Dask runner has always read it
    "set": "set",
    "log_level": "log_level",
    "otel": "otel",
}
# what each setting must be, for the one-line error
EXPECTED: dict[str, str] = {
    "db": "a path",
    "max_concurrency": "a whole number of at least 1",
    "executor": "local or dask",
    "dask_scheduler": "an address (text)",
    "set": "a table of initial context values (JSON values)",
    "log_level": "debug, info, warning, error or critical",
    "otel": "otlp or console",
}


class Settings(BaseSettings):
    """What the configuration file and the environment set (None: not set)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="forbid")

    db: str | None = None
    max_concurrency: int | None = Field(default=None, ge=1)
    executor: Literal["local", "dask"] | None = None
    dask_scheduler: str | None = None
    set: dict[str, JsonValue] = Field(default_factory=dict)
    log_level: Literal["debug", "info", "warning", "error", "critical"] | None = None
    otel: Literal["otlp", "console"] | None = None  # spans of every run (tui-flow[otel])

    @field_validator("max_concurrency", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a bool is not a number")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # first wins: the environment, then the file's table (given as the init arguments)
        return env_settings, init_settings


@dataclass(frozen=True)
class Config:
    """The settings in force, and the file they came from (None: no file)."""

    settings: Settings = field(default_factory=Settings)
    path: Path | None = None

    def db(self) -> str | None:
        """The run database the environment or the file names (a relative path in the file
        is relative to the file's folder)."""
        db = self.settings.db
        if db is None or self.path is None or _env("db") is not None:
            return db
        return str(self.path.parent / Path(db).expanduser())


def find(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """The nearest configuration file from `start` up, and its tui-flow table."""
    for folder in (start, *start.parents):
        own = folder / FILE_NAME
        if own.is_file():
            return own, _read(own)
        project = folder / "pyproject.toml"
        if project.is_file():
            table: Any = _read(project)
            for key in TABLE:
                table = table.get(key) if isinstance(table, dict) else None
            if table is not None:
                if not isinstance(table, dict):
                    raise BadInput(f"{_shown(project)}: [tool.tui-flow] must be a table")
                return project, table
    return None


def load(start: Path | None = None) -> Config:
    """The configuration in force for a command run in `start` (the working directory)."""
    found = find(start or Path.cwd())
    path, table = found if found else (None, {})
    given: dict[str, tuple[str, Any]] = {}  # setting -> (the key as written, its value)
    for key, value in table.items():
        name = KEYS.get(key.replace("-", "_"))
        if name is None:
            close = difflib.get_close_matches(key.replace("-", "_"), list(KEYS), n=1)
            hint = f"; did you mean {close[0].replace('_', '-')!r}?" if close else ""
            known = ", ".join(k.replace("_", "-") for k in KEYS)
            raise BadInput(f"{_where(path, key)}: unknown setting{hint} (known: {known})")
        if name in given:
            raise BadInput(f"{_where(path, key)}: given twice (as {given[name][0]!r} too)")
        given[name] = (key, value)
    try:
        settings = Settings(**{name: value for name, (_, value) in given.items()})
    except ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        if _env(name) is not None:
            raise _bad_variable(name) from None
        key, value = given[name]
        raise BadInput(f"{_where(path, key)} must be {EXPECTED[name]}, not {value!r}") from None
    except ValueError as exc:  # SettingsError: a variable that is not JSON where JSON is due
        name = next((n for n in EXPECTED if f'"{n}"' in str(exc)), "set")
        raise _bad_variable(name) from None
    return Config(settings, path)


def _env(name: str) -> str | None:
    """The environment variable of setting `name`, if set (as pydantic-settings reads it)."""
    wanted = (ENV_PREFIX + name).upper()
    return next((v for k, v in os.environ.items() if k.upper() == wanted and v), None)


def _bad_variable(name: str) -> BadInput:
    expected = "a JSON object (initial context values)" if name == "set" else EXPECTED[name]
    return BadInput(f"${ENV_PREFIX}{name.upper()} must be {expected}, not {_env(name)!r}")


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{_shown(path)}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{_shown(path)}: cannot read it: {exc}") from None


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _where(path: Path | None, key: str) -> str:
    if path is not None and path.name == "pyproject.toml":
        return f"{_shown(path)}: [tool.tui-flow] {key}"
    return f"{_shown(path) if path else FILE_NAME}: {key}"
