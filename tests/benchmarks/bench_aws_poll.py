"""AWS poll cost on moto: wall time and API calls against a bare DescribeInstances listing."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

from fleetview.domain.versions import VersionRules
from fleetview.providers.aws.provider import AwsProvider
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.sim.aws_fleet import GroupSpec, seed_aws_fleet
from fleetview.sim.moto_server import MotoServer
from tests.benchmarks import Figure

REGIONS = ("us-east-1", "eu-west-1")
SIZES = {
    # per region: groups of `size`, standalone instances (one reservation each), repetitions
    "tiny": ([GroupSpec("api", size=8, version="1.4.0", running="1.3.0", pointer="$Latest")],
             2, 1),
    "full": ([GroupSpec("web", size=150), GroupSpec("api", size=150, version="1.4.0",
                                                     running="1.3.0", pointer="$Latest"),
              GroupSpec("worker", size=100, version="1.3.0", pointer="$Default", mixed=True),
              GroupSpec("batch", size=50, version="1.2.0")], 50, 5),
}
PAGE = 1000  # DescribeInstances' largest page, used by both sides


def bare_listing(clients: dict) -> tuple[int, int]:
    """What a script would do: every region's instances through the paginator."""
    instances = pages = 0
    for ec2 in clients.values():
        for page in ec2.get_paginator("describe_instances").paginate(
                PaginationConfig={"PageSize": PAGE}):
            pages += 1
            instances += sum(len(r["Instances"]) for r in page["Reservations"])
    return instances, pages


def bare_listing_parallel(clients: dict, pool: ThreadPoolExecutor) -> tuple[int, int]:
    results = list(pool.map(lambda c: bare_listing({0: c}), clients.values()))
    return sum(r[0] for r in results), sum(r[1] for r in results)


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def run(size: str) -> list[Figure]:
    groups, standalone, reps = SIZES[size]
    with MotoServer.start() as server:
        fleet = seed_aws_fleet(server.url, REGIONS, groups=groups, standalone=standalone,
                               unlabelled=0)
        config = Config(retries={"mode": "standard"})
        clients = {r: boto3.client("ec2", region_name=r, endpoint_url=server.url,
                                   config=config) for r in REGIONS}
        scope = AwsScopeConfig(name="bench", regions=REGIONS, endpoint_url=server.url)
        pool = ThreadPoolExecutor(len(REGIONS))
        bare_listing(clients)  # warm both sides' connections and moto's caches alike

        provider = AwsProvider(scope, VersionRules())
        cold_s, cold = timed(provider.poll)
        # Regions sharing one endpoint are polled in turn; spelling the same server two ways
        # makes two lanes, polled at once, as on AWS (full size only: a cold poll more).
        spelled = {REGIONS[0]: server.url, REGIONS[1]: server.url.replace("127.0.0.1",
                                                                            "localhost")}
        in_turn = AwsProvider(scope, VersionRules(), endpoint_for=spelled.get) \
            if size == "full" else None
        if in_turn is not None:
            in_turn.poll()
        bare_s, bare_par_s, warm_s, warm_calls, turn_s = [], [], [], [], []
        pages = instances = 0
        for _ in range(reps):
            seconds, (instances, pages) = timed(lambda: bare_listing(clients))
            bare_s.append(seconds)
            seconds, _ = timed(lambda: bare_listing_parallel(clients, pool))
            bare_par_s.append(seconds)
            seconds, warm = timed(provider.poll)
            warm_s.append(seconds)
            warm_calls.append(warm.api_calls)
            if in_turn is not None:
                seconds, _ = timed(in_turn.poll)
                turn_s.append(seconds)
        provider.close()
        if in_turn is not None:
            in_turn.close()
        pool.shutdown()

    assert warm.ok and len(warm.instances) == fleet.instance_count == instances
    budget = pages + 2 * len(REGIONS)  # pages + one call for images and one for groups a region
    bare = statistics.median(bare_s)
    bare_par = statistics.median(bare_par_s)
    figures = [
        Figure("aws instances polled", len(warm.instances), "instances"),
        Figure("aws poll wall time, warm", statistics.median(warm_s), "s", bare,
               "bare DescribeInstances paginator, regions in turn", "<= 1.3x baseline"),
        Figure("aws poll wall time, cold (new provider: clients, STS, images)", cold_s, "s",
               bare, "bare DescribeInstances paginator, regions in turn"),
        Figure("aws poll API calls, warm", max(warm_calls), "calls", budget,
               "pages + 2 per region", "<= baseline"),
        Figure("aws poll API calls, cold", cold.api_calls, "calls", budget,
               "pages + 2 per region"),
    ]
    if turn_s:
        figures.insert(3, Figure(
            "aws poll wall time, warm, regions at once (as on AWS)", statistics.median(turn_s),
            "s", bare_par, "bare paginator, regions in parallel", "<= 1.3x baseline"))
    return figures
