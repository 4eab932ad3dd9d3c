"""`fleetview snapshot` prints the fleet as JSON or CSV and says which scopes failed."""

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime

import pytest

from fleetview.cli import main
from fleetview.domain.errors import ProviderError
from fleetview.domain.model import Group, Image, Instance, Inventory, RegionError, Scope, State
from fleetview.providers import REGISTRY, aws
from tests.helpers.fakes import StubProvider

LAUNCHED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class FakeProvider(StubProvider):
    """A provider boundary fake: one group, one standalone instance, one failing region."""

    actor = "arn:aws:iam::123456789012:user/test"

    def poll(self) -> Inventory:
        if self.config.name == "broken":
            raise ProviderError("credentials expired; run `aws sso login --profile broken`")
        scope = Scope("aws", self.config.name, "123456789012", self.config.regions)
        inst = dict(provider="aws", scope=self.config.name, account="123456789012",
                    region="us-east-1", zone="us-east-1a", state=State.RUNNING,
                    launched_at=LAUNCHED)
        inventory = Inventory(
            scope=scope, polled_at=LAUNCHED,
            instances=(
                Instance(id="i-0abc", name="web-1", group="web-asg", image_id="ami-0def",
                         **inst),
                Instance(id="i-0sta", name="bastion", group=None, image_id="ami-0old", **inst),
            ),
            groups=(Group("aws", self.config.name, "123456789012", "us-east-1", "web-asg",
                          "asg", "ami-0def", 1),),
            images={"ami-0def": Image("aws", "ami-0def", "web-1.4.2-20261101"),
                    "ami-0old": Image("aws", "ami-0old", "bastion-0.9.1")},
            errors=tuple(RegionError(r, f"{r} is down") for r in self.config.regions[1:]),
            regions_ok=self.config.regions[:1],
        )
        return self.rules.label(inventory)






# AWS's declaration (config table, needs) with this module's provider: one registry line.
CLOUD = dataclasses.replace(aws.CLOUD, provider=f"{__name__}:FakeProvider")


@pytest.fixture
def fake_aws(monkeypatch):
    monkeypatch.setitem(REGISTRY, "aws", __name__)


def write(tmp_path, scopes):
    path = tmp_path / "config.toml"
    path.write_text("".join(f'[[aws]]\nname = "{name}"\nregions = {regions}\n'
                            for name, regions in scopes).replace("'", '"'))
    return str(path)


def test_json_snapshot(fake_aws, tmp_path, capsys):
    config = write(tmp_path, [("prod-aws", ["us-east-1"])])
    assert main(["snapshot", "--config", config]) == 0
    out = json.loads(capsys.readouterr().out)
    web, bastion = sorted(out["instances"], key=lambda r: r["name"], reverse=True)
    assert web == {
        "provider": "aws", "scope": "prod-aws", "account": "123456789012",
        "region": "us-east-1", "zone": "us-east-1a", "group": "web-asg",
        "instance_id": "i-0abc", "name": "web-1", "image_id": "ami-0def",
        "image_name": "web-1.4.2-20261101", "version": "1.4.2", "desired_version": "1.4.2",
        "state": "running", "launched_at": "2026-11-01T09:00:00Z"}
    assert bastion["group"] is None and bastion["desired_version"] is None
    assert bastion["version"] == "0.9.1"
    assert out["errors"] == []


def test_partial_failure_exits_3_and_prints_the_rest(fake_aws, tmp_path, capsys):
    config = write(tmp_path, [("prod-aws", ["us-east-1", "eu-west-1"]), ("broken", ["us-east-1"])])
    assert main(["snapshot", "--config", config]) == 3
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert len(out["instances"]) == 2
    assert {(e["scope"], e["region"]) for e in out["errors"]} == {
        ("prod-aws", "eu-west-1"), ("broken", None)}
    assert "aws sso login --profile broken" in captured.err


def test_csv_snapshot(fake_aws, tmp_path, capsys):
    config = write(tmp_path, [("prod-aws", ["us-east-1"])])
    assert main(["snapshot", "--config", config, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["instance_id"] for r in rows] == ["i-0sta", "i-0abc"]
    assert {r["version"] for r in rows} == {"1.4.2", "0.9.1"}
    assert set(rows[0]) >= {"provider", "scope", "instance_id", "desired_version", "launched_at"}


def test_no_scopes_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "empty.toml"
    path.write_text("[poll]\ninterval_s = 60\n")
    assert main(["snapshot", "--config", str(path)]) == 2
    assert "no scopes configured" in capsys.readouterr().err


def test_gcp_sdk_not_imported_for_an_aws_only_config(fake_aws, tmp_path, capsys):
    import sys

    sys.modules.pop("google.cloud.compute_v1", None)
    config = write(tmp_path, [("prod-aws", ["us-east-1"])])
    main(["snapshot", "--config", config])
    assert "google.cloud.compute_v1" not in sys.modules
