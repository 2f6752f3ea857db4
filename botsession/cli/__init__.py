"""The ``botsession`` command: ``check``, ``show`` (with ``report``), ``probe`` and ``schema``."""

from .command import main

__all__ = ["main"]
