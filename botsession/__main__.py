"""``python -m botsession``: the same as the ``botsession`` command."""

from botsession.cli import main

raise SystemExit(main())
