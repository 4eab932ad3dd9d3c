"""The bundle's self-check of the Google SDK: its REST clients build without a network."""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from google.cloud import logging as cloud_logging


def check() -> str:
    for client in (compute_v1.InstancesClient, compute_v1.ImagesClient,
                   compute_v1.InstanceGroupManagersClient):
        client(credentials=AnonymousCredentials(), transport="rest",
               client_options={"api_endpoint": "http://127.0.0.1:9"})
    # The backfill's audit log reader, over REST as the emulator and the bundle need it.
    cloud_logging.Client(project="selfcheck", credentials=AnonymousCredentials(),
                         _use_grpc=False, client_options={"api_endpoint": "http://127.0.0.1:9"})
    import fleetview.providers.gcp.backfill  # noqa: F401 - the backfill imports in a bundle
    import fleetview.providers.gcp.provider  # noqa: F401 - the provider imports in a bundle

    return "google-cloud-compute and google-cloud-logging REST clients"
