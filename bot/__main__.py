"""`python -m bot` is the `vfbot` command; with no arguments it runs `vfbot serve`."""

import sys

from bot.cli import main

sys.exit(main(sys.argv[1:] or ["serve"]))
