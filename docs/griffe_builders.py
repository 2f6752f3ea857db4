"""Griffe extensions for the API reference: the builders' real signature and arguments, and
the configuration fields' descriptions.

Every public builder is written as a function of the loaded configuration and decorated with
``taking_arguments_of(load_outcome)``, which gives it ``load_outcome``'s parameters at run time
(``__signature__``). griffe reads the source without running it, so without this the reference
would show ``load_config(loaded)``; here each such builder gets ``load_outcome``'s parameters
and keeps its own return annotation.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe

SHARED = "taking_arguments_of(load_outcome)"
TEMPLATE = "botsession.factory.load_outcome"
ARGUMENTS = "botsession.factory.SHARED_ARGUMENTS"


class SharedArguments(griffe.Extension):
    """Give each function decorated with ``taking_arguments_of(load_outcome)`` the template's
    parameters, once the whole package is loaded (the template lives in another module)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path != "botsession":
            return
        template = pkg.modules_collection.get_member(TEMPLATE)
        # The Args/Raises text the decorator appends at run time, read from the source.
        arguments = ast.literal_eval(str(pkg.modules_collection.get_member(ARGUMENTS).value))
        for function in _functions(pkg):
            if any(str(decorator.value) == SHARED for decorator in function.decorators):
                function.parameters = griffe.Parameters(*template.parameters)
                if function.docstring is not None:
                    function.docstring.value = function.docstring.value + "\n" + arguments


def _functions(module: griffe.Module) -> list[griffe.Function]:
    found: list[griffe.Function] = []
    for member in module.members.values():
        if member.is_alias:
            continue
        if isinstance(member, griffe.Function):
            found.append(member)
        elif isinstance(member, griffe.Module):
            found.extend(_functions(member))
    return found


MODELS = ("BotSessionConfig", "ApiServer", "TlsSettings")


class FieldDescriptions(griffe.Extension):
    """Give each field of the configuration models the ``description`` its ``Field(...)``
    declares (what ``botsession schema`` and the JSON schema show), as its docstring: the
    fields have no docstrings of their own, the descriptions are written once, in the model."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path != "botsession":
            return
        import botsession.config_schema as schema  # the descriptions, as pydantic built them

        for name in MODELS:
            model = getattr(schema, name)
            documented = pkg.modules_collection.get_member(f"botsession.config_schema.{name}")
            for field, info in model.model_fields.items():
                member = documented.members.get(field)
                if member is None or info.description is None or member.docstring is not None:
                    continue
                member.docstring = griffe.Docstring(info.description, parent=member)
