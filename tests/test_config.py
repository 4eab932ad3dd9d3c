"""A config is read whole or refused with one line that says where and what to write."""

import subprocess
import sys

import pytest

from fleetview.cli import main
from fleetview.config import load_config, parse_config
from fleetview.providers.aws.scope import AwsScopeConfig
from fleetview.providers.gcp.scope import GcpScopeConfig

GOOD = """
protect = ["env=prod"]

[store]
url = "sqlite:////tmp/fv.db"
keep_days = 90

[poll]
interval_s = 30

[[aws]]
name = "prod-aws"
regions = ["us-east-1", "eu-west-1"]
profile = "prod"
role_arn = "arn:aws:iam::123456789012:role/fleetview"
endpoint_url = "http://127.0.0.1:5000"
actions = true

[[gcp]]
name = "prod-gcp"
project = "my-project"
api_endpoint = "http://127.0.0.1:8085"
credentials = "anonymous"

[versions]
rules = [{ tag = "build" }, { name_regex = "r(\\\\d+)", provider = "gcp", dotted = true }]
"""


def test_good_config_is_read_whole(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(GOOD)
    config = load_config(path)
    aws, gcp = config.scopes
    assert isinstance(aws, AwsScopeConfig) and isinstance(gcp, GcpScopeConfig)
    assert aws.regions == ("us-east-1", "eu-west-1") and aws.actions is True
    assert gcp.actions is False and gcp.credentials == "anonymous"
    assert config.poll.interval_s == 30 and config.store.keep_days == 90
    assert config.protect == ("env=prod",)
    assert [r.tag or r.name_regex for r in config.versions.rules] == ["build", r"r(\d+)"]


def test_missing_default_file_is_an_empty_config(monkeypatch, tmp_path):
    monkeypatch.setattr("fleetview.config.default_config_path", lambda: tmp_path / "none.toml")
    assert load_config().scopes == ()


BAD = {
    "toml syntax": ('[[aws]]\nname = "a"\nregions = [us-east-1]\n', ":3: ", "TOML syntax"),
    "unknown key": ('[[aws]]\nname = "a"\nregions = ["us-east-1"]\nregion = "x"\n',
                    ":4: aws[0].region: unknown key", "regions"),
    "wrong type": ('[[aws]]\nname = "a"\nregions = "us-east-1"\n',
                   ":3: aws[0].regions: must be a list", '["us-east-1"'),
    "bool type": ('[[aws]]\nname = "a"\nregions = ["us-east-1"]\nactions = "yes"\n',
                  ":4: aws[0].actions", "true or false"),
    "no regions": ('[[aws]]\nname = "a"\nregions = []\n', "aws[0].regions", "at least one region"),
    "missing regions": ('[[aws]]\nname = "a"\n', "aws[0].regions", "at least one region"),
    "duplicate name": ('[[aws]]\nname = "a"\nregions = ["us-east-1"]\n'
                       '[[gcp]]\nname = "a"\nproject = "p"\n', ":5: gcp[0].name: duplicate",
                       "its own name"),
    "anonymous remote": ('[[gcp]]\nname = "g"\nproject = "p"\n'
                         'api_endpoint = "https://compute.googleapis.com"\n'
                         'credentials = "anonymous"\n', ":5: gcp[0].credentials",
                         "loopback"),
    "anonymous default endpoint": ('[[gcp]]\nname = "g"\nproject = "p"\n'
                                   'credentials = "anonymous"\n', "gcp[0].credentials",
                                   "loopback"),
    "unknown top key": ('[stor]\nurl = "x"\n', "stor: unknown key", "store"),
    "bad region": ('[[aws]]\nname = "a"\nregions = ["useast1"]\n', "aws[0].regions",
                   '"us-east-1"'),
    "bad interval": ("[poll]\ninterval_s = 0\n", ":2: poll.interval_s", "at least 5"),
    "bad regex": ('[versions]\nrules = [{ name_regex = "(" }]\n', "name_regex",
                  "not a valid regular expression"),
    "aws as table": ('[aws]\nname = "a"\n', "aws:", "[[aws]]"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_exits_2_with_one_clear_line(case, tmp_path, capsys):
    text, where, fix = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["snapshot", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert str(path) in lines[0] and where in lines[0] and fix in lines[0]
    assert "Traceback" not in captured.err


def test_bad_config_through_the_installed_command(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[aws]]\nname = "a"\nregions = []\n')
    result = subprocess.run([sys.executable, "-m", "fleetview", "snapshot", "--config",
                             str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "regions" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_explicit_config_file(tmp_path, capsys):
    assert main(["snapshot", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_config_option_after_or_before_the_command(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[poll]\ninterval_s = 1\n")
    assert main(["--config", str(path), "snapshot"]) == 2
    assert main(["snapshot", "--config", str(path)]) == 2


def test_parse_reports_toml_line():
    with pytest.raises(Exception) as info:
        parse_config("a = \n", "x.toml")
    assert "x.toml:1" in str(info.value)
