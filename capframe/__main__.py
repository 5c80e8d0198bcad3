"""``python -m capframe``: the command line, without relying on a script on PATH."""

import sys

from capframe.cli import main

sys.exit(main())
