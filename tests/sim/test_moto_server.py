"""The moto server helper: starts on a free port, answers, resets, stops."""

import socket
import threading
import urllib.request

import boto3

from fleetview.sim.moto_server import MotoServer, free_port
from tests.helpers.aws import moto_server  # noqa: F401


def test_start_answers_on_loopback_and_stop_ends_the_process():
    # Started by a thread that has ended by the time the server is used: it must live on.
    started = []
    worker = threading.Thread(target=lambda: started.append(MotoServer.start()))
    worker.start()
    worker.join(60)
    server = started[0]
    with server:
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


def test_the_server_dies_with_its_parent(tmp_path):
    import subprocess
    import sys
    import time

    script = ("from fleetview.sim.moto_server import MotoServer\n"
              "s = MotoServer.start()\nprint(s.process.pid, flush=True)\n"
              "import os; os._exit(0)\n")  # the parent vanishes without stopping it
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    pid = int(out.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os_kill(pid)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"moto server {pid} outlived its parent")


def os_kill(pid: int) -> None:
    import os

    os.kill(pid, 0)

