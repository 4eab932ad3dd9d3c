"""Version labels from images, and their natural order."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from fleetview.domain.model import Group, Image, Instance, Inventory, Scope, State
from fleetview.domain.versions import VersionRule, VersionRules, dotted, version_key

RULES = VersionRules()


def aws(name="", tags=None, image_id="ami-0123456789abcdef0"):
    return Image(provider="aws", id=image_id, name=name, tags=tags or {})


def gcp(name="", labels=None):
    return Image(provider="gcp", id=f"projects/p/global/images/{name}", name=name,
                 tags=labels or {})


class TestAwsDefaults:
    def test_version_tag_wins_over_name(self):
        assert RULES.version_of(aws("web-2.4.0-20261101", {"version": "2.5.1"})) == "2.5.1"

    def test_tag_key_is_case_insensitive(self):
        assert RULES.version_of(aws("web", {"Version": "3.0.0"})) == "3.0.0"

    def test_first_dotted_run_in_name(self):
        assert RULES.version_of(aws("web-2.4.0-20261101")) == "2.4.0"
        assert RULES.version_of(aws("api-v1.10-build.7")) == "1.10"

    def test_single_number_is_not_a_version(self):
        assert RULES.version_of(aws("web-20261101")) == "ami-0123456789abcdef0"

    def test_falls_back_to_ami_id(self):
        assert RULES.version_of(aws("golden-image")) == "ami-0123456789abcdef0"

    def test_empty_tag_value_is_ignored(self):
        assert RULES.version_of(aws("web-1.2.3", {"version": ""})) == "1.2.3"


class TestGcpDefaults:
    def test_label_digits_become_dotted(self):
        assert RULES.version_of(gcp("web", {"version": "1-4-2"})) == "1.4.2"
        assert RULES.version_of(gcp("web", {"version": "1_4_2"})) == "1.4.2"

    def test_label_keeps_pre_release_suffix(self):
        assert RULES.version_of(gcp("web", {"version": "1-4-0-rc1"})) == "1.4.0-rc1"

    def test_date_stamp_ends_the_run(self):
        assert RULES.version_of(gcp("web-2-4-0-20261101")) == "2.4.0"

    def test_dotted_and_underscored_names(self):
        assert RULES.version_of(gcp("web-2.4.0")) == "2.4.0"
        assert RULES.version_of(gcp("web-2_4_0-x")) == "2.4.0"

    def test_date_first_then_version(self):
        assert RULES.version_of(gcp("web-20261101-3-1")) == "3.1"

    def test_falls_back_to_image_name(self):
        assert RULES.version_of(gcp("golden-image")) == "golden-image"

    def test_aws_tag_rule_does_not_apply_to_gcp(self):
        assert RULES.version_of(gcp("web-1-2-3", {"version": "9-9"})) == "9.9"


def test_configured_rules_replace_defaults():
    rules = VersionRules((VersionRule(tag="build"), VersionRule(name_regex=r"r(?P<version>\d+)")))
    assert rules.version_of(aws("web-1.2.3-r77", {"build": "b42"})) == "b42"
    assert rules.version_of(aws("web-1.2.3-r77")) == "77"
    assert rules.version_of(gcp("web-1-2-3")) == "web-1-2-3"


def test_dotted_only_touches_separators_between_digits():
    assert dotted("v1-2_3-beta-4") == "v1.2.3-beta-4"


def test_label_fills_instances_and_groups():
    scope = Scope("aws", "prod", "123456789012", ("us-east-1",))
    image = aws("web-1.4.2-x", image_id="ami-1")
    inv = Inventory(
        scope=scope, polled_at=datetime(2026, 11, 26, tzinfo=UTC),
        instances=(
            Instance("aws", "i-1", "web-1", "prod", "123456789012", "us-east-1", "us-east-1a",
                     "web", "ami-1", State.RUNNING),
            Instance("aws", "i-2", "web-2", "prod", "123456789012", "us-east-1", "us-east-1a",
                     None, "ami-unknown", State.RUNNING),
        ),
        groups=(Group("aws", "prod", "123456789012", "us-east-1", "web", "asg", "ami-1", 2),),
        images={"ami-1": image},
    )
    labelled = RULES.label(inv)
    assert [i.version for i in labelled.instances] == ["1.4.2", "ami-unknown"]
    assert labelled.groups[0].desired_version == "1.4.2"
    assert labelled.images["ami-1"].version == "1.4.2"


class TestOrder:
    def test_examples(self):
        ordered = ["1.4.0-rc1", "1.4.0", "1.9", "1.10", "1.10.1", "2.0.0-alpha", "2.0.0-beta2",
                   "2.0.0-beta10", "2.0.0-rc1", "2.0.0", "10.0"]
        assert sorted(reversed(ordered), key=version_key) == ordered

    def test_non_versions_sort_before_versions(self):
        assert sorted(["1.0", "ami-0abc", None], key=version_key) == [None, "ami-0abc", "1.0"]

    def test_leading_v_is_ignored(self):
        assert version_key("v1.10") > version_key("1.9")


releases = st.lists(st.integers(0, 999), min_size=1, max_size=4)
suffixes = st.one_of(st.just(""), st.sampled_from(["alpha", "beta", "rc"]).flatmap(
    lambda word: st.integers(0, 20).map(lambda n: f"-{word}{n}")))


def label(release, suffix):
    return ".".join(map(str, release)) + suffix


def trimmed(release):
    release = list(release)
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    return tuple(release)


@given(releases, suffixes, releases, suffixes)
def test_order_follows_numbers_then_pre_release(r1, s1, r2, s2):
    a, b = version_key(label(r1, s1)), version_key(label(r2, s2))
    if trimmed(r1) != trimmed(r2):
        assert (a < b) == (trimmed(r1) < trimmed(r2))
    elif bool(s1) != bool(s2):
        assert (a < b) == bool(s1)  # the pre-release comes first


@given(st.lists(st.tuples(releases, suffixes), min_size=3, max_size=8))
def test_order_is_total_and_consistent(items):
    labels = [label(r, s) for r, s in items]
    ordered = sorted(labels, key=version_key)
    keys = [version_key(x) for x in ordered]
    assert all(x <= y for x, y in zip(keys, keys[1:], strict=False))
    assert sorted(reversed(labels), key=version_key) == ordered or len(set(labels)) < len(labels)


@given(st.text(max_size=20), st.text(max_size=20))
def test_any_two_labels_compare(x, y):
    a, b = version_key(x), version_key(y)
    assert (a < b) + (b < a) + (a == b) == 1
    assert (a == b) == (x == y)
