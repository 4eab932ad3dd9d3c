"""Version labelling and sorting: images labelled per second, beside a bare regex search."""

from __future__ import annotations

import random
import re
import time

from fleetview.domain.model import Image
from fleetview.domain.versions import AWS_NAME_PATTERN, VersionRules, version_key
from tests.benchmarks import Figure

SIZES = {"tiny": 2_000, "full": 200_000}


def _images(count: int) -> list[Image]:
    rng = random.Random(7)
    images = []
    for n in range(count):
        version = f"{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        if n % 3 == 0:
            images.append(Image("aws", f"ami-{n:017x}", f"web-{version}-20261101",
                                tags={"Version": version}))
        elif n % 3 == 1:
            images.append(Image("aws", f"ami-{n:017x}", f"web-{version}-20261101"))
        else:
            images.append(Image("gcp", f"projects/p/global/images/web-{n}",
                                f"web-{version.replace('.', '-')}-20261101"))
    return images


def run(size: str) -> list[Figure]:
    images = _images(SIZES[size])
    rules = VersionRules()

    started = time.perf_counter()
    labels = [rules.version_of(image) for image in images]
    labelled = time.perf_counter() - started

    pattern = re.compile(AWS_NAME_PATTERN)
    started = time.perf_counter()
    for image in images:
        pattern.search(image.name)
    bare = time.perf_counter() - started

    started = time.perf_counter()
    sorted(set(labels), key=version_key)
    sorting = time.perf_counter() - started

    count = len(images)
    return [
        Figure("version_labelling_rate", count / labelled, "images/s",
               baseline=count / bare, baseline_name="one bare regex search"),
        Figure(f"version_sort_time_{len(set(labels))}_labels", sorting * 1000, "ms"),
    ]
