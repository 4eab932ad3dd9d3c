"""The moto server helper: starts on a free port, answers, resets, stops."""

import socket
import urllib.request

import boto3

from fleetview.sim.moto_server import MotoServer, free_port
from tests.providers.aws_fixtures import moto_server  # noqa: F401


def test_start_answers_on_loopback_and_stop_ends_the_process():
    with MotoServer.start() as server:
        assert server.url.startswith("http://127.0.0.1:") and server.alive()
        with urllib.request.urlopen(f"{server.url}/moto-api/data.json", timeout=5) as answer:
            assert answer.status == 200
        process = server.process
    assert process.poll() is not None and not server.alive()


def test_reset_forgets_every_resource(moto_server):  # noqa: F811
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_server.url)
    image = ec2.register_image(Name="app-1.0.0")["ImageId"]
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [image]
    moto_server.reset()
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
