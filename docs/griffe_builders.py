"""A griffe extension for the API reference: the builders' real signature.

Every public builder is written as a function of the loaded configuration and decorated with
``taking_arguments_of(load_outcome)``, which gives it ``load_outcome``'s parameters at run time
(``__signature__``). griffe reads the source without running it, so without this the reference
would show ``load_config(loaded)``; here each such builder gets ``load_outcome``'s parameters
and keeps its own return annotation.
"""

from __future__ import annotations

from typing import Any

import griffe

SHARED = "taking_arguments_of(load_outcome)"
TEMPLATE = "botsession.factory.load_outcome"


class SharedArguments(griffe.Extension):
    """Give each function decorated with ``taking_arguments_of(load_outcome)`` the template's
    parameters, once the whole package is loaded (the template lives in another module)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path != "botsession":
            return
        template = pkg.modules_collection.get_member(TEMPLATE)
        for function in _functions(pkg):
            if any(str(decorator.value) == SHARED for decorator in function.decorators):
                function.parameters = griffe.Parameters(*template.parameters)


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
