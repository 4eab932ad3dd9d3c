"""Entry point for `python -m fleetview`."""

import sys

from fleetview.cli import main

sys.exit(main())
