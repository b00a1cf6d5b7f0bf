"""Loading typed, validated YAML configuration files (shared by agent and collector).

Errors name the file, the key path and what is wrong, e.g.::

    /etc/spbe-agent/agent.yaml: probes[1].port: Field required
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A configuration file that cannot be used; the message says where and why."""


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def format_validation_error(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors(include_url=False, include_input=False):
        raw = tuple(e["loc"])
        # a tag follows the list index of its element ("probes[1].tcp.port"); a config key
        # that happens to equal a tag ("server_scan.ports") is kept
        loc = tuple(p for i, p in enumerate(raw)
                    if not (isinstance(p, str) and p in _UNION_TAGS and i > 0
                            and isinstance(raw[i - 1], int)))
        lines.append(f"{source}: {_loc(loc)}: {e['msg']}")
    return "\n".join(lines)


# pydantic puts the discriminator value into the location of tagged-union errors
_UNION_TAGS = {"icmp", "tcp", "http", "heartbeat", "host_facts", "probe", "device", "config",
               "backup", "files", "restic", "borg", "reported", "server_scan"}


def env_overrides(prefix: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``PREFIX_A__B=value`` becomes ``{"a": {"b": value}}``; values are parsed as YAML scalars.

    Two variables that disagree on the shape (``PREFIX_A=x`` and ``PREFIX_A__B=y``) are an
    error naming both."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}   # key path -> the variable that set it
    for key in sorted(env):
        if not key.startswith(prefix) or key in (prefix, prefix + "CONFIG"):
            continue  # PREFIX_CONFIG names the config file itself
        raw = env[key]
        path = key[len(prefix):].lower().split("__")
        if any(not part for part in path):
            raise ConfigError(f"environment variable {key}: empty key part (doubled '__'?)")
        node = out
        for i, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variables {origin[tuple(path[:i + 1])]} and "
                                  f"{key} conflict: the first sets a value where the second "
                                  f"needs a section")
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise ConfigError(f"environment variables {key} and "
                              f"{origin[(*path, '*')]} conflict: the first sets a "
                              f"value where the second needs a section")
        try:
            node[path[-1]] = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            node[path[-1]] = raw
        origin[tuple(path)] = key
        for i in range(1, len(path)):
            origin.setdefault((*path[:i], "*"), key)
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (YAML would keep the last silently)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                                deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"key {key!r} given twice (first on line {seen[key] + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        except TypeError:   # an unhashable key: SafeLoader reports it
            break
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _mapping_without_duplicates)


def parse_yaml(text: str, source: str) -> Any:
    """YAML text -> Python data; every way it can fail is a :class:`ConfigError` that says
    where."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{source}: not valid YAML{where}: {getattr(e, 'problem', e)}") from e
    except RecursionError:
        raise ConfigError(f"{source}: not usable: nested too deeply") from None


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{what}: cannot read: {e.strerror}") from e


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def load_config(model: type[M], path: Path | None, env_prefix: str,
                defaults: Mapping[str, Any] | None = None) -> M:
    """Read ``path`` (YAML), apply env overrides, validate against ``model``."""
    data: dict[str, Any] = dict(defaults or {})
    source = str(path) if path else "(embedded defaults)"
    if path is not None:
        loaded = parse_yaml(read_text(path, source), source)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: (top level): must be a mapping of keys, "
                              f"got {type(loaded).__name__}")
        _merge(data, loaded)
    _merge(data, env_overrides(env_prefix))
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(source, e)) from e
    except RecursionError:
        raise ConfigError(f"{source}: not usable: nested too deeply") from None


def read_secret(*, env: str | None, file: Path | None, what: str) -> str:
    """A secret from an environment variable or a file; never echoes the value."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{what}: environment variable {env} is not set or empty")
        return value.strip()
    if file:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"{what}: secret file {file} is not UTF-8 text") from None
        except OSError as e:
            raise ConfigError(f"{what}: cannot read secret file {file}: {e.strerror}") from e
        if not value:
            raise ConfigError(f"{what}: secret file {file} is empty")
        return value
    raise ConfigError(f"{what}: no secret configured (set *_env or *_file)")
