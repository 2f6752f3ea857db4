"""Reading ``bot.yaml`` safely, remembering the line and column of every value.

The document is composed into nodes (no object construction, so ``!!python`` tags cannot run
code), then converted by hand: that is where positions are recorded, unsafe tags and duplicate
keys are refused, alias expansion is bounded and ``${VAR}`` / ``${VAR:-default}`` are expanded.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

import yaml

from .config_schema import BotSessionWarning
from .errors import Problem
from .layers import Layer, Origin, Path, format_path
from .redaction import has_url_password

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 10_000
"""Bound on values after alias expansion: a config has dozens, a "billion laughs" has billions."""
MAX_DEPTH = 32
"""Bound on nesting: a config is 4 levels deep; thousands would exhaust Python's stack."""

_SAFE_TAGS = {
    "tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null", "map", "seq")
}
_PATH_KEYS = frozenset({"password_file", "ca_file"})
"""Keys holding file names; relative names are relative to the YAML file, not the cwd."""

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TooLarge(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_yaml(path: FsPath, shown_as: str, variables: Mapping[str, str]) -> Layer:
    """Read one YAML config file into a layer; problems are collected, not raised."""
    layer = Layer("yaml")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            layer.problems.append(
                Problem(shown_as, "", f"the file is {size} bytes; the limit is {MAX_FILE_BYTES}")
            )
            return layer
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        layer.problems.append(Problem(shown_as, "", f"cannot read the file: {error.strerror}"))
        return layer
    except UnicodeDecodeError as error:
        layer.problems.append(
            Problem(shown_as, "", f"not UTF-8 text (byte {error.start} is invalid); is it binary?")
        )
        return layer
    converter = _Converter(layer, shown_as, path.parent, variables)
    converter.convert_document(text)
    if converter.plaintext_password:
        _warn_if_readable(path, shown_as)
    return layer


_warned: set[str] = set()


def _warn_if_readable(path: FsPath, shown_as: str) -> None:
    """Like OpenSSH for private keys: a password in a file others can read deserves a warning."""
    mode = path.stat().st_mode
    readers = [
        who for who, bit in (("group", stat.S_IRGRP), ("others", stat.S_IROTH)) if mode & bit
    ]
    key = str(path.resolve())
    if not readers or key in _warned:
        return
    _warned.add(key)
    warnings.warn(
        f"{shown_as} holds a plaintext password and is readable by {' and '.join(readers)}; "
        f"run chmod 600 {shown_as}, or keep the password out of the file with ${{VAR}} "
        "or password_file",
        BotSessionWarning,
        stacklevel=4,
    )


class _Converter:
    def __init__(
        self, layer: Layer, shown_as: str, directory: FsPath, variables: Mapping[str, str]
    ) -> None:
        self.layer = layer
        self.shown_as = shown_as
        self.directory = directory
        self.variables = variables
        self.nodes = 0
        self.loader: Any = None
        self.plaintext_password = False

    def where(self, node: yaml.Node) -> str:
        mark = node.start_mark
        return f"{self.shown_as}:{mark.line + 1}:{mark.column + 1}"

    def problem(self, node: yaml.Node, path: Path, message: str) -> None:
        self.layer.problems.append(Problem(self.where(node), format_path(path), message))

    def convert_document(self, text: str) -> None:
        self.loader = _Loader(text)
        try:
            root = self.loader.get_single_node()
            if root is None:
                return  # an empty file configures nothing
            if not isinstance(root, yaml.MappingNode):
                self.problem(root, (), "the top level must be a mapping of settings")
                return
            data = self.value(root, ())
            self.layer.data = data if isinstance(data, dict) else {}
        except yaml.MarkedYAMLError as error:
            self.layer.problems.append(Problem(*self.syntax_error(error)))
        except yaml.reader.ReaderError as error:
            message = f"not a text file: {error.reason} at character {error.position}"
            self.layer.problems.append(Problem(self.shown_as, "", message))
        except yaml.YAMLError as error:
            self.layer.problems.append(Problem(self.shown_as, "", f"YAML error: {error}"))
        except _TooLarge as error:
            self.layer.problems.append(Problem(self.shown_as, "", error.message))
        finally:
            self.loader.dispose()

    def syntax_error(self, error: yaml.MarkedYAMLError) -> tuple[str, str, str]:
        def at(mark: Any) -> str:
            return f"{self.shown_as}:{mark.line + 1}:{mark.column + 1}"

        mark = error.problem_mark or error.context_mark
        message = f"YAML syntax error: {error.problem or error.context}"
        if error.context and error.problem and error.context_mark is not None:
            message += f" ({error.context} that starts at {at(error.context_mark)})"
        return (at(mark) if mark else self.shown_as), "", message

    def value(self, node: yaml.Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge(
                f"the document expands to more than {MAX_NODES} values "
                "(anchors and aliases nested too deeply?)"
            )
        if len(path) > MAX_DEPTH:
            raise _TooLarge(f"values are nested more than {MAX_DEPTH} levels deep")
        if path:
            self.layer.origins[path] = Origin("yaml", self.where(node))
        if node.tag not in _SAFE_TAGS:
            self.problem(node, path, f"the YAML tag {node.tag!r} is not allowed in a config")
            return None
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*path, index)) for index, item in enumerate(node.value)]
        scalar = self.loader.construct_object(node)
        if isinstance(scalar, str):
            if "${" not in scalar and (
                (path and path[-1] == "password" and scalar) or has_url_password(scalar)
            ):
                self.plaintext_password = True
            scalar = self.interpolate(scalar, node, path)
            if path and path[-1] in _PATH_KEYS and scalar and not os.path.isabs(scalar):
                scalar = str(self.directory / scalar)
        return scalar

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # applies "<<" merge keys
        result: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node) if key_node.tag in _SAFE_TAGS else None
            if not isinstance(key, str):
                self.problem(key_node, path, "mapping keys must be plain strings")
                continue
            sub: Path = (*path, key)
            if key in seen:
                self.problem(
                    key_node,
                    sub,
                    f"duplicate key {key!r}; it is also set at {self.where(seen[key])}",
                )
                continue
            seen[key] = key_node
            self.layer.key_origins[sub] = Origin("yaml", self.where(key_node))
            result[key] = self.value(value_node, sub)
        return result

    def interpolate(self, text: str, node: yaml.Node, path: Path) -> str:
        if "$" not in text:
            return text

        def replace(match: re.Match[str]) -> str:
            if match.group(1) is None:
                return "${"  # "$${" is a literal "${"
            name, has_default, default = match.group(1).partition(":-")
            if not _NAME.fullmatch(name):
                self.problem(
                    node, path, f"'${{{match.group(1)}}}' is not a valid variable reference"
                )
                return ""
            value = self.variables.get(name)
            if value is not None and (value or not has_default):
                return value
            if has_default:
                return default  # ":-" also replaces an empty value, as in the shell
            self.problem(node, path, f"${{{name}}} is not set and has no default (${{{name}:-…}})")
            return ""

        return _REFERENCE.sub(replace, text)
