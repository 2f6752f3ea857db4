"""Reading ``bot.yaml`` safely, remembering the line and column of every value.

The document is composed into nodes (no object construction, so ``!!python`` tags cannot run
code), then converted by hand: that is where positions are recorded, unsafe tags and duplicate
keys are refused, alias expansion is bounded and ``${VAR}`` / ``${VAR:-default}`` are expanded
(each value to at most 64 Ki characters). The document as read — every key and value, aliases
and ``${VAR}`` expanded — is at most 2 Mi characters: an alias repeats a value without
repeating its text, so without that bound 10,000 aliases of a 1 MiB value would be 10 GB.

Scalars are read as YAML 1.2 reads them where YAML 1.1 (PyYAML) differs: only ``true`` and
``false`` are booleans (``yes``, ``no``, ``on`` and ``off`` are text), and numbers written in
forms that YAML 1.1 reads differently or that 1.2 does not know (``010`` is 8 in 1.1, ``0b1``,
``0x1f``, ``1_000``, ``1:30``) are errors asking for a plain decimal number. Merge keys
(``<<: *anchor``) are applied as YAML intends: a key written beside them wins.
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

from ..errors import BotSessionWarning, Problem, outside_stacklevel
from ..redaction import has_url_password
from .files import UnreadableFile, read_regular_file
from .provenance import MAX_INTEGER_DIGITS, Layer, Origin, Path, format_path, shown_key

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 10_000
"""Bound on values after alias expansion: a config has dozens, a "billion laughs" has billions."""
MAX_DEPTH = 32
"""Bound on nesting: a config is 4 levels deep; thousands would exhaust Python's stack."""
MAX_EXPANDED_VALUE = 64 * 1024
"""Bound, in characters, on a value that uses ``${VAR}`` once expanded (as on a variable)."""
MAX_DOCUMENT_CHARACTERS = 2 * 1024 * 1024
"""Bound on the characters of the keys and values read from a document, each time an alias
uses them and with ``${VAR}`` expanded: what the file (at most 1 MiB) can hold, plus 1 Mi."""

_TAG = "tag:yaml.org,2002:"
_SAFE_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "map", "seq")}
_MERGE_TAG = _TAG + "merge"
_VALUE_TAG = _TAG + "value"
"""The tag PyYAML gives a plain ``=`` key; it is just the string ``=``."""
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(
    r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_PATH_KEYS = frozenset({"password_file", "ca_file"})
"""Keys holding file names; relative names are relative to the YAML file, not the cwd."""

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TooLarge(Exception):
    def __init__(self, message: str, where: str | None = None, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.path = path


class _ValueTooLong(Exception):
    """A value grew past ``MAX_EXPANDED_VALUE`` while its ``${VAR}`` were expanded."""


class _Skip:
    """A value that could not be read: its key is left out (the problem is reported)."""


_SKIP: Any = _Skip()
_Pair = tuple[str, yaml.Node, yaml.Node]


def read_yaml(path: FsPath, shown_as: str, variables: Mapping[str, str]) -> Layer:
    """Read one YAML config file into a layer; problems are collected, not raised.

    Any path is safe: a directory, FIFO, device or file over 1 MiB is a problem, found without
    blocking and without reading more than the limit.
    """
    layer = Layer("yaml")
    try:
        contents = read_regular_file(path, MAX_FILE_BYTES, "the config file")
        text = contents.data.decode("utf-8")
    except UnreadableFile as error:
        layer.problems.append(Problem(shown_as, "", error.message))
        return layer
    except UnicodeDecodeError as error:
        layer.problems.append(
            Problem(shown_as, "", f"not UTF-8 text (byte {error.start} is invalid); is it binary?")
        )
        return layer
    converter = _Converter(layer, shown_as, path.parent, variables)
    converter.convert_document(text)
    if converter.plaintext_password:
        _warn_if_readable(path, shown_as, contents.mode)
    return layer


_warned: set[str] = set()


def _warn_if_readable(path: FsPath, shown_as: str, mode: int) -> None:
    """Like OpenSSH for private keys: a password in a file others can read deserves a warning."""
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
        stacklevel=outside_stacklevel(),
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
        self.pairs: dict[int, list[_Pair]] = {}
        """The effective pairs of each mapping node, merge keys applied (aliases share nodes)."""
        self.merging: set[int] = set()
        self.characters = 0
        """Characters of the keys and values read so far (see ``MAX_DOCUMENT_CHARACTERS``)."""

    def where(self, node: yaml.Node) -> str:
        mark = node.start_mark
        return f"{self.shown_as}:{mark.line + 1}:{mark.column + 1}"

    def problem(self, node: yaml.Node, path: Path, message: str) -> None:
        self.layer.problems.append(Problem(self.where(node), format_path(path), message))

    def value_problem(self, node: yaml.Node, path: Path, message: str) -> None:
        """A problem of this value alone: reported only if no other source overrides it."""
        where = self.where(node)
        problem = Problem(where, format_path(path), message)
        self.layer.value_problems.append((Origin("yaml", where), problem))

    def convert_document(self, text: str) -> None:
        try:
            self.loader = _Loader(text)  # PyYAML's own loader checks the characters here
            root = self.loader.get_single_node()
            if root is None:
                return  # an empty file configures nothing
            if not isinstance(root, yaml.MappingNode):
                self.problem(root, (), "the top level must be a mapping of settings")
                return
            data = self.value(root, ())
            self.layer.data = data if isinstance(data, dict) else {}
        except yaml.MarkedYAMLError as error:
            self.layer.problems.append(Problem(*self.syntax_error(error, text)))
        except yaml.reader.ReaderError as error:
            # libyaml gives the offset of the character in UTF-8 bytes, PyYAML in characters,
            # both from 0; the first such character in the text is the one refused.
            found = text.find(chr(error.character)) if isinstance(error.character, int) else -1
            position = found + 1 if found >= 0 else error.position + 1
            message = f"not a text file: {error.reason} at character {position}"
            self.layer.problems.append(Problem(self.shown_as, "", message))
        except yaml.YAMLError as error:
            self.layer.problems.append(Problem(self.shown_as, "", f"YAML error: {error}"))
        except _TooLarge as error:
            where = error.where or self.shown_as
            self.layer.problems.append(Problem(where, error.path, error.message))
        finally:
            if self.loader is not None:
                self.loader.dispose()

    def syntax_error(self, error: yaml.MarkedYAMLError, text: str) -> tuple[str, str, str]:
        def at(mark: Any) -> str:
            return f"{self.shown_as}:{mark.line + 1}:{mark.column + 1}"

        mark = error.problem_mark or error.context_mark
        if mark is not None and _character_at(text, mark.line, mark.column) == "\t":
            # PyYAML says "found character '\t' that cannot start any token".
            message = (
                "YAML syntax error: a tab character; YAML indents with spaces only, so "
                "replace the tab with spaces"
            )
            return at(mark), "", message
        message = f"YAML syntax error: {error.problem or error.context}"
        if error.context and error.problem and error.context_mark is not None:
            message += f" ({error.context} that starts at {at(error.context_mark)})"
        return (at(mark) if mark else self.shown_as), "", message

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge(
                f"the document expands to more than {MAX_NODES} values "
                "(anchors and aliases nested too deeply?)"
            )

    def value(self, node: yaml.Node, path: Path) -> Any:
        self.count()
        if len(path) > MAX_DEPTH:
            raise _TooLarge(f"values are nested more than {MAX_DEPTH} levels deep")
        if path:
            self.layer.origins[path] = Origin("yaml", self.where(node))
        if node.tag not in _SAFE_TAGS:
            tag = shown_key(node.tag)
            self.problem(node, path, f"the YAML tag {tag!r} is not allowed in a config")
            return _SKIP
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = (self.value(item, (*path, index)) for index, item in enumerate(node.value))
            return [None if item is _SKIP else item for item in items]
        self.grow(len(node.value), node, path)
        problem = _scalar_problem(node)
        if problem is not None:
            self.problem(node, path, problem)
            return _SKIP
        scalar = self.scalar(node)
        if isinstance(scalar, str):
            if "${" not in scalar and (
                (path and path[-1] == "password" and scalar) or has_url_password(scalar)
            ):
                self.plaintext_password = True
            scalar = self.interpolate(scalar, node, path)
            if path and path[-1] in _PATH_KEYS and scalar and not os.path.isabs(scalar):
                scalar = str(self.directory / scalar)
        return scalar

    def scalar(self, node: yaml.Node) -> Any:
        if node.tag == _TAG + "bool" and node.value.lower() not in ("true", "false"):
            return node.value  # YAML 1.2: yes, no, on and off are text
        return self.loader.construct_object(node)

    def grow(self, characters: int, node: yaml.Node, path: Path) -> None:
        """Count what was read; past ``MAX_DOCUMENT_CHARACTERS`` reading stops."""
        self.characters += characters
        if self.characters > MAX_DOCUMENT_CHARACTERS:
            raise _TooLarge(
                f"the keys and values of this file add up to more than {MAX_DOCUMENT_CHARACTERS}"
                " characters with aliases and ${…} expanded (a long value used through many "
                "aliases?)",
                self.where(node),
                format_path(path),
            )

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, key_node, value_node in self.effective_pairs(node, path, 0):
            sub: Path = (*path, key)
            self.grow(len(key), key_node, sub)
            self.layer.key_origins[sub] = Origin("yaml", self.where(key_node))
            value = self.value(value_node, sub)
            if value is not _SKIP:
                result[key] = value
        return result

    def effective_pairs(self, node: yaml.MappingNode, path: Path, depth: int) -> list[_Pair]:
        """``(key, key node, value node)`` of a mapping: its own keys, then merged ones.

        A key written in the mapping wins over a merged one, and of ``<<: [*a, *b]`` the first
        mapping wins, as the YAML merge key type says. Duplicates among the keys written in
        one mapping are errors. Every pair merged counts towards ``MAX_NODES``.
        """
        known = self.pairs.get(id(node))
        if known is not None:
            return known
        if depth > MAX_DEPTH:
            raise _TooLarge(f"merge keys ('<<') are nested more than {MAX_DEPTH} levels deep")
        own: list[_Pair] = []
        seen: dict[str, yaml.Node] = {}
        merge: tuple[yaml.Node, yaml.Node] | None = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                if merge is not None:
                    message = f"duplicate key '<<'; it is also set at {self.where(merge[0])}"
                    self.problem(key_node, path, message)
                else:
                    merge = key_node, value_node
                continue
            key = self.key(key_node)
            if key is None:
                self.problem(key_node, path, "mapping keys must be plain strings")
                continue
            if key in seen:
                self.problem(
                    key_node,
                    (*path, key),
                    f"duplicate key {shown_key(key)!r}; it is also set at {self.where(seen[key])}",
                )
                continue
            seen[key] = key_node
            own.append((key, key_node, value_node))
        pairs = own
        if merge is not None:
            self.merging.add(id(node))
            try:
                for pair in self.merged_pairs(merge[1], path, depth):
                    if pair[0] not in seen:
                        seen[pair[0]] = pair[1]
                        pairs.append(pair)
            finally:
                self.merging.discard(id(node))
        self.pairs[id(node)] = pairs
        return pairs

    def merged_pairs(self, node: yaml.Node, path: Path, depth: int) -> list[_Pair]:
        if isinstance(node, yaml.MappingNode):
            sources: list[yaml.Node] = [node]
        elif isinstance(node, yaml.SequenceNode):
            sources = list(node.value)
        else:
            sources = []
        if not sources or not all(isinstance(item, yaml.MappingNode) for item in sources):
            self.problem(
                node,
                path,
                "the merge key '<<' takes a mapping or a list of mappings (an alias such as "
                "*defaults, or [*a, *b])",
            )
            return []
        pairs: list[_Pair] = []
        for source in sources:
            if id(source) in self.merging:
                self.problem(node, path, "the merge key '<<' refers to a mapping that contains it")
                continue
            assert isinstance(source, yaml.MappingNode)
            for pair in self.effective_pairs(source, path, depth + 1):
                self.count()
                pairs.append(pair)
        return pairs

    def key(self, node: yaml.Node) -> str | None:
        if node.tag == _VALUE_TAG:
            return "="
        if node.tag not in _SAFE_TAGS or not isinstance(node, yaml.ScalarNode):
            return None
        if _scalar_problem(node) is not None:
            return None
        key = self.scalar(node)
        return key if isinstance(key, str) else None

    def interpolate(self, text: str, node: yaml.Node, path: Path) -> str:
        """``text`` with its ``${VAR}`` expanded; each missing variable is reported once, as a
        problem of this value (see ``value_problem``).

        Linear time: the regular expression runs only up to the last ``}`` (from each ``${``
        without a ``}`` after it, it would scan to the end: quadratic), and the expansion stops
        as soon as the value or the document grows past its bound.
        """
        if "$" not in text:
            return text
        size = len(text)
        reported: set[str] = set()

        def report(key: str, message: str) -> str:
            if key not in reported:
                reported.add(key)
                self.value_problem(node, path, message)
            return ""

        def replace(match: re.Match[str]) -> str:
            nonlocal size
            reference = match.group(1)
            if reference is None:
                return "${"  # "$${" is a literal "${"
            name, has_default, default = reference.partition(":-")
            if not _NAME.fullmatch(name):
                shown = shown_key(reference)
                return report(reference, f"'${{{shown}}}' is not a valid variable reference")
            value = self.variables.get(name)
            if value is not None and (value or not has_default):
                piece = value
            elif has_default:
                piece = default  # ":-" also replaces an empty value, as in the shell
            else:
                shown = shown_key(name)
                message = f"${{{shown}}} is not set and has no default (${{{shown}:-…}})"
                return report(name, message)
            size += len(piece) - len(match[0])
            if size > MAX_EXPANDED_VALUE:
                raise _ValueTooLong
            self.grow(len(piece), node, path)
            return piece

        end = text.rfind("}") + 1
        try:
            expanded = _REFERENCE.sub(replace, text[:end])
        except _ValueTooLong:
            self.value_problem(
                node,
                path,
                f"with its ${{…}} expanded the value is more than {MAX_EXPANDED_VALUE} "
                "characters long; that is the limit",
            )
            return ""  # kept (its problem is reported only while the value is in effect)
        # After the last "}" only "$${" can match.
        return expanded + text[end:].replace("$${", "${")


def _character_at(text: str, line: int, column: int) -> str:
    """The character at a YAML mark's line and column (from 0), or "" past the end."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return ""
    return lines[line][column : column + 1]


def _too_many_digits(text: str) -> str | None:
    """Why an integer is too long to read (Python would raise ValueError past 4,300 digits)."""
    digits = len(text.lstrip("+-"))
    if digits <= MAX_INTEGER_DIGITS:
        return None
    return (
        f"a number of {digits} digits; numbers have at most {MAX_INTEGER_DIGITS} "
        "(quote the value if it is text)"
    )


def _scalar_problem(node: yaml.Node) -> str | None:
    """Why a number must be written differently, or None."""
    text = node.value
    if node.tag == _TAG + "int":
        if _PLAIN_INT.fullmatch(text):
            return _too_many_digits(text)
    elif node.tag == _TAG + "float":
        if _PLAIN_FLOAT.fullmatch(text):
            return None
    else:
        return None
    digits = text.lstrip("+-").lower()
    if "_" in digits:
        form = "with '_' between digits (YAML 1.2 reads it as text)"
    elif ":" in digits:
        form = "in base 60 (YAML 1.1 reads 1:30 as 90, YAML 1.2 as text)"
    elif digits.startswith("0b"):
        form = "in binary (0b…)"
    elif digits.startswith("0x"):
        form = "in hexadecimal (0x…)"
    elif digits.startswith("0o"):
        form = "in octal (0o…)"
    elif digits.startswith("0") and len(digits) > 1:
        form = "with a leading zero (YAML 1.1 reads 010 as the octal number 8, YAML 1.2 as 10)"
    else:
        form = "in a form that is not a number"
    return (
        f"a number written {form}; write a plain decimal number such as 10 or 2.5, "
        "or quote the value if it is text"
    )
