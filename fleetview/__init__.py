"""FleetView: which machine image every instance runs, across AWS and GCP, now and in the past."""

__version__ = "0.1.0"
