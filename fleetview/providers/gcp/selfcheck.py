"""The bundle's self-check of the Google SDK: its REST clients build without a network."""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1


def check() -> str:
    for client in (compute_v1.InstancesClient, compute_v1.ImagesClient,
                   compute_v1.InstanceGroupManagersClient):
        client(credentials=AnonymousCredentials(), transport="rest",
               client_options={"api_endpoint": "http://127.0.0.1:9"})
    import fleetview.providers.gcp.provider  # noqa: F401 - the provider imports in a bundle

    return "google-cloud-compute REST clients"
