"""``python -m spacetime_game.cli``: the ``spacetime-game`` command, without the installed script."""

import sys

from ._main import main

sys.exit(main())
