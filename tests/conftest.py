"""Test-wide settings: Qt offscreen, no real cloud credentials, no user config."""

import os
import tempfile

# Set before anything imports Qt or a cloud SDK.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_SESSION_TOKEN"] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
# Audit witnesses (fleetview/store/witness.py) go to a file of this run, not the user's.
os.environ["FLEETVIEW_AUDIT_WITNESS"] = os.path.join(
    tempfile.mkdtemp(prefix="fleetview-witness-"), "audit-witness.jsonl")
