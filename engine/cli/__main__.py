"""``python -m engine.cli``: the ``debrid`` command."""

import sys

from engine.cli import main

sys.exit(main())
