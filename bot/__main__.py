"""`python -m bot` is the `vfbot` command."""

import sys

from bot.cli import main

sys.exit(main())
