"""The moto server helper: starts on a free port, answers, resets, stops."""

import boto3

from fleetview.sim.moto_server import MotoServer, free_port


def _ec2(url: str):
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=url)


def test_start_answers_reset_forgets_and_stop_ends_the_process():
    with MotoServer.start() as server:
        assert server.url.startswith("http://127.0.0.1:")
        ec2 = _ec2(server.url)
        image = ec2.register_image(Name="app-1.0.0")["ImageId"]
        assert ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"] == image
        server.reset()
        assert ec2.describe_images(Owners=["self"])["Images"] == []
        process = server.process
    assert process.poll() is not None


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
