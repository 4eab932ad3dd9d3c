"""Image -> version label by ordered rules, and the natural order of version labels."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import total_ordering

from fleetview.domain.model import Image, Inventory, Provider

# Two or more dot-joined digit groups: `web-2.4.0-20261101` -> `2.4.0`.
AWS_NAME_PATTERN = r"(?<![\d.])\d+(?:\.\d+)+"
# Two or more digit groups of at most 5 digits joined by `.`, `-` or `_`; a longer group (a
# date stamp) ends the run: `web-2-4-0-20261101` -> `2-4-0`.
GCP_NAME_PATTERN = r"(?<!\d)\d{1,5}(?!\d)(?:[._-]\d{1,5}(?!\d))+"

_BETWEEN_DIGITS = re.compile(r"(?<=\d)[-_](?=\d)")


def dotted(value: str) -> str:
    """GCP label values cannot hold dots, so `1-4-2` (or `1_4_2`) stands for `1.4.2`."""
    return _BETWEEN_DIGITS.sub(".", value)


@dataclass(frozen=True)
class VersionRule:
    """One rule: a tag (AWS) or label (GCP) key, or a regex on the image name.

    `provider` limits the rule to one cloud. `dotted` turns `-`/`_` between digits into
    dots. A regex's named group `version`, else its first group, else the whole match is the
    label.
    """

    tag: str | None = None
    name_regex: str | None = None
    provider: Provider | None = None
    dotted: bool = False

    def __post_init__(self) -> None:
        if (self.tag is None) == (self.name_regex is None):
            raise ValueError("a version rule needs exactly one of `tag` or `name_regex`")
        if self.name_regex is not None:
            re.compile(self.name_regex)  # raises re.error for the config loader to report

    def apply(self, image: Image) -> str | None:
        if self.provider is not None and image.provider != self.provider:
            return None
        value: str | None = None
        if self.tag is not None:
            wanted = self.tag.lower()
            value = next((v for k, v in image.tags.items() if k.lower() == wanted and v), None)
        else:
            match = re.search(self.name_regex or "", image.name or "")
            if match:
                if "version" in match.re.groupindex:
                    value = match.group("version")
                elif match.re.groups:
                    value = match.group(1)
                else:
                    value = match.group(0)
        if not value:
            return None
        return dotted(value) if self.dotted else value


DEFAULT_RULES: tuple[VersionRule, ...] = (
    VersionRule(tag="version", provider="aws"),
    VersionRule(name_regex=AWS_NAME_PATTERN, provider="aws"),
    VersionRule(tag="version", provider="gcp", dotted=True),
    VersionRule(name_regex=GCP_NAME_PATTERN, provider="gcp", dotted=True),
)


@dataclass(frozen=True)
class VersionRules:
    """Ordered rules, first match wins; an image no rule matches is known by its AMI id
    (AWS) or its name (GCP), so it still shows as a distinct version."""

    rules: tuple[VersionRule, ...] = DEFAULT_RULES

    def version_of(self, image: Image) -> str:
        for rule in self.rules:
            label = rule.apply(image)
            if label:
                return label
        return image.id if image.provider == "aws" else (image.name or image.id)

    def label(self, inventory: Inventory) -> Inventory:
        """The inventory with every image, instance and group given its version label."""
        images = {
            key: dataclasses.replace(img, version=self.version_of(img))
            for key, img in inventory.images.items()
        }

        def version(image_id: str | None) -> str | None:
            if image_id is None:
                return None
            img = images.get(image_id)
            return img.version if img is not None else image_id

        instances = tuple(
            dataclasses.replace(i, version=version(i.image_id),
                                desired_version=version(i.desired_image_id))
            for i in inventory.instances
        )
        groups = tuple(
            dataclasses.replace(
                g,
                desired_version=version(g.desired_image_id),
                canary_version=version(g.canary_image_id),
            )
            for g in inventory.groups
        )
        return dataclasses.replace(inventory, images=images, instances=instances, groups=groups)


# ASCII digits only: int() refuses other Unicode digits such as "¹".
_RELEASE = re.compile(r"^[vV]?([0-9]+(?:\.[0-9]+)*)(.*)$", re.DOTALL)
_CHUNK = re.compile(r"[0-9]+|[^0-9]+")


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    # Each chunk is (kind, number, text) so digits and words always compare.
    return tuple(
        (0, int(c), "") if c[0] in "0123456789" else (1, 0, c.lower()) for c in _CHUNK.findall(text)
    )


@total_ordering
class _Key:
    __slots__ = ("parts",)

    def __init__(self, parts: tuple) -> None:
        self.parts = parts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self.parts == other.parts

    def __lt__(self, other: _Key) -> bool:
        return self.parts < other.parts

    def __hash__(self) -> int:
        return hash(self.parts)


def version_key(label: str | None) -> _Key:
    """Sort key: 1.9 < 1.10 < 1.10.1, and 1.4.0-rc1 < 1.4.0.

    Labels that are not versions (an AMI id, an image name) sort before every version, among
    themselves naturally; None sorts first of all. The label itself breaks ties, so the order
    is total and deterministic.
    """
    if label is None:
        return _Key((0,))
    match = _RELEASE.match(label.strip())
    if not match:
        return _Key((1, _natural(label), label))
    release = [int(p) for p in match.group(1).split(".")]
    while len(release) > 1 and release[-1] == 0:  # 1.4 and 1.4.0 are the same release
        release.pop()
    suffix = match.group(2).lstrip("-_.+~")
    # A release without a suffix comes after all its pre-releases.
    pre = (1,) if not suffix else (0, _natural(suffix))
    return _Key((2, tuple(release), pre, label))
