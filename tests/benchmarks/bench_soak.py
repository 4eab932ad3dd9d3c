"""Soak: the collector (a child process, as the window starts it) polls a churning fleet on
moto for minutes; prints its memory at start and end, the store's size, polls per minute, and
whether the store equals the cloud at the end.

Churn, every few seconds: standalone instances terminated and others launched from another
version, Auto Scaling groups scaled out and in, group members terminated and replaced. None
of it loses more than a few percent of the fleet at once, so no poll is held as suspect.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from fleetview.providers.aws.shapes import STATE_MAP
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from fleetview.sim.moto_server import MotoServer
from fleetview.store import Store
from tests.benchmarks import Figure

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ("us-east-1", "eu-west-1")
VERSIONS = ("1.2.0", "1.3.0", "1.4.0")


@dataclass(frozen=True)
class Size:
    group_size: int  # per group; two groups a region
    standalone: int  # per region
    duration_s: float  # of churn
    churn_every_s: float
    interval_s: float  # the collector's poll interval (the config's minimum is 5 s)


SIZES = {
    # 2 regions x (2 groups x 100 + 50) = 500 instances, churned for 5 minutes
    "full": Size(group_size=100, standalone=50, duration_s=300.0, churn_every_s=2.0,
                 interval_s=5.0),
    "tiny": Size(group_size=3, standalone=4, duration_s=1.0, churn_every_s=0.25, interval_s=5.0),
}
EVENT_WAIT_S = 120.0  # the longest wait for one collector event


def _rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc); 0 where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Collector:
    """`fleetview collect` as a child process; its JSON lines arrive on `events`."""

    def __init__(self, config: Path, log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fleetview", "collect", "--config", str(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            cwd=ROOT, env=os.environ.copy())
        self.events: queue.Queue[dict] = queue.Queue()
        self.finished: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                event = json.loads(line)
                if event.get("event") == "poll_finished":
                    self.finished.append(event)
                self.events.put(event)

    def next_event(self, kind: str) -> dict:
        """The next event of `kind` (or RuntimeError if the collector went quiet)."""
        deadline = time.monotonic() + EVENT_WAIT_S
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=1.0)
            except queue.Empty:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the collector exited ({self.process.returncode}); "
                                       f"see {self._log.name}") from None
                continue
            if event.get("event") == kind:
                return event
        raise RuntimeError(f"no {kind} event within {EVENT_WAIT_S:.0f} s")

    def poll_after(self, moment: datetime) -> dict:
        """Ask for a poll now; the poll_finished of the first poll started after `moment`."""
        self.send("poll")
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # as events say
        while True:
            started = self.next_event("poll_started")
            if datetime.fromisoformat(started["time"].replace("Z", "+00:00")) >= moment:
                return self.next_event("poll_finished")

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("stop")
                self.process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self._log.close()


class Churn:
    """Changes to the fleet through boto3, as operators and Auto Scaling make them."""

    def __init__(self, url: str, fleet, size: Size, seed: int = 19) -> None:
        self.random = random.Random(seed)
        self.size = size
        self.images = {r: fleet.regions[r].images for r in REGIONS}
        self.ec2 = {r: boto3.client("ec2", region_name=r, endpoint_url=url) for r in REGIONS}
        self.asg = {r: boto3.client("autoscaling", region_name=r, endpoint_url=url)
                    for r in REGIONS}
        self.standalone = {r: list(fleet.regions[r].standalone) for r in REGIONS}
        self.operations = 0

    def step(self) -> None:
        region = self.random.choice(REGIONS)
        kind = self.random.choice(("replace", "scale", "terminate"))
        if kind == "replace" and self.standalone[region]:
            self._replace_standalone(region)
        elif kind == "scale":
            self._scale(region)
        else:
            self._terminate_member(region)
        self.operations += 1

    def _replace_standalone(self, region: str) -> None:
        ids = self.standalone[region]
        count = min(len(ids), self.random.randint(1, 3))
        gone = self.random.sample(ids, count)
        self.ec2[region].terminate_instances(InstanceIds=gone)
        version = self.random.choice(VERSIONS)
        made = self.ec2[region].run_instances(
            ImageId=self.images[region][version], MinCount=count, MaxCount=count,
            InstanceType="t3.micro")["Instances"]
        self.standalone[region] = [i for i in ids if i not in gone] + \
            [i["InstanceId"] for i in made]

    def _scale(self, region: str) -> None:
        name = self.random.choice(("web", "api"))
        base = self.size.group_size
        low, high = max(1, base - max(1, base // 10)), base + max(1, base // 10)
        self.asg[region].set_desired_capacity(AutoScalingGroupName=name,
                                              DesiredCapacity=self.random.randint(low, high))

    def _terminate_member(self, region: str) -> None:
        name = self.random.choice(("web", "api"))
        members = self.asg[region].describe_auto_scaling_groups(
            AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["Instances"]
        if members:
            self.asg[region].terminate_instance_in_auto_scaling_group(
                InstanceId=self.random.choice(members)["InstanceId"],
                ShouldDecrementDesiredCapacity=False)

    def cloud(self) -> dict[str, tuple[str, str]]:
        """instance id -> (AMI, state) of every instance not terminated, as EC2 says."""
        out = {}
        for region in REGIONS:
            for page in self.ec2[region].get_paginator("describe_instances").paginate():
                for reservation in page["Reservations"]:
                    for raw in reservation["Instances"]:
                        state = STATE_MAP.get(raw["State"]["Name"])
                        if state is not None and state.value != "terminated":
                            out[raw["InstanceId"]] = (raw.get("ImageId"), state.value)
        return out


def _store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def run(size: str) -> list[Figure]:
    workdir = Path(tempfile.mkdtemp(prefix="fleetview-soak-"))
    try:
        return _soak(SIZES[size], workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _soak(spec: Size, workdir: Path) -> list[Figure]:
    db = workdir / "history.db"
    with MotoServer.start() as server:
        fleet = seed_aws_fleet(
            server.url, REGIONS, versions=VERSIONS, standalone=spec.standalone,
            standalone_reservations=max(1, spec.standalone // 10), unlabelled=0,
            groups=[GroupSpec("web", size=spec.group_size, version="1.4.0"),
                    GroupSpec("api", size=spec.group_size, version="1.4.0", running="1.3.0",
                              pointer="$Latest")])
        config = workdir / "config.toml"
        config.write_text(
            f'[store]\nurl = "sqlite:///{db}"\n\n'
            f"[poll]\ninterval_s = {spec.interval_s}\njitter_s = 0\ndeadline_s = 60\n\n"
            f'[[aws]]\nname = "soak"\nregions = {json.dumps(list(REGIONS))}\n'
            f'endpoint_url = "{server.url}"\n')
        churn = Churn(server.url, fleet, spec)
        collector = Collector(config, workdir / "collector.log")
        try:
            first = collector.next_event("poll_finished")
            rss_start = _rss_mib(collector.process.pid)
            started = time.monotonic()
            polls_before = len(collector.finished)
            while True:
                churn.step()
                changed = datetime.now(UTC)
                if time.monotonic() - started >= spec.duration_s:
                    break
                time.sleep(spec.churn_every_s)
            # The churn has stopped: one more poll sees the fleet as it is now.
            collector.poll_after(changed)
            elapsed_min = (time.monotonic() - started) / 60
            rss_end = _rss_mib(collector.process.pid)
            polls = len(collector.finished) - polls_before
            failed = sum(1 for e in collector.finished if not e["ok"])
            cloud = churn.cloud()
        finally:
            collector.stop()
        with Store.open(f"sqlite:///{db}", readonly=True) as store:
            fleet_now = store.fleet_at()
            stored = {r.instance_id: (r.image_id, r.state) for r in fleet_now.itertuples()}
            now = datetime.now(UTC)
            spans = len(store.spans(now - timedelta(days=1), now + timedelta(days=1)))
        store_mib = _store_bytes(db) / 2**20
    mismatched = len(set(stored.items()) ^ set(cloud.items()))
    return [
        Figure("soak instances at start", first["instances"], "instances"),
        Figure("soak instances at end", len(cloud), "instances"),
        Figure("soak churn operations", churn.operations, "operations"),
        Figure("soak collector memory at start", rss_start, "MiB"),
        Figure("soak collector memory at end", rss_end, "MiB", rss_start, "memory at start",
               "<= 1.2x baseline"),
        Figure("soak store size", store_mib, "MiB"),
        Figure("soak spans in store", spans, "spans"),
        Figure("soak polls per minute", polls / elapsed_min if elapsed_min else 0, "polls/min"),
        Figure("soak failed polls", failed, "polls", target="0"),
        Figure("soak store equals cloud at end", 1.0 if mismatched == 0 else 0.0, "yes=1",
               target="1"),
        Figure("soak instances differing between store and cloud", mismatched, "instances",
               target="0"),
    ]
