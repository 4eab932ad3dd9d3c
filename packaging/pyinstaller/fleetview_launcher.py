"""The bundle's entry point: the `fleetview` command, or the self-check with FLEETVIEW_SELFCHECK=1."""

import os
import sys

if __name__ == "__main__":
    # The GUI starts its collector as `<python> -m fleetview collect`; in the bundle the
    # "python" is this executable, so accept (and drop) that prefix.
    if sys.argv[1:3] == ["-m", "fleetview"]:
        del sys.argv[1:3]
    if os.environ.get("FLEETVIEW_SELFCHECK") == "1":
        from fleetview.ui.selfcheck import main
    else:
        from fleetview.cli import main
    sys.exit(main())
