"""``python -m demos.arena``: the arena demo (see :mod:`demos.arena.launch`)."""

import sys

from .launch import main

sys.exit(main())
