"""The filter language of the fleet table."""

from __future__ import annotations

import pandas as pd

from fleetview.ui.fleet_filter import filter_mask, parse_filter

FLEET = pd.DataFrame({
    "instance_id": ["i-1", "i-2", "i-3", "i-4"],
    "name": ["web-a", "web-b", "api-a", "bastion"],
    "version": ["1.4", "1.4.2", "1.40", None],
    "desired_version": ["1.4.2", "1.4.2", "1.40", None],
    "region": ["us-east-1", "us-east-1", "eu-west-1", "us-east-1"],
    "state": ["running", "running", "stopped", "running"],
    "group": ["web", "web", "api", None],
    "drift": [True, False, False, False],
})


def ids(text: str) -> list[str]:
    return list(FLEET["instance_id"][filter_mask(FLEET, parse_filter(text))])


def test_version_term_matches_the_release_line_not_a_prefix():
    assert ids("version:1.4") == ["i-1", "i-2"]
    assert ids("version:1.4.2") == ["i-2"]
    assert ids("v:1.40") == ["i-3"]


def test_terms_combine_and_negate():
    assert ids("region:us-east-1 state:running") == ["i-1", "i-2", "i-4"]
    assert ids("-group:web region:us-east-1") == ["i-4"]
    assert ids("drift:yes") == ["i-1"]
    assert ids("drift:no state:stopped") == ["i-3"]


def test_free_text_searches_names_ids_and_versions():
    assert ids("bastion") == ["i-4"]
    assert ids("WEB") == ["i-1", "i-2"]
    assert ids("i-3") == ["i-3"]
    assert ids("web -web-b") == ["i-1"]


def test_unknown_keys_and_bad_values_are_errors_not_filters():
    flt = parse_filter("colour:red drift:maybe web")
    assert len(flt.errors) == 2
    assert flt.words == ("web",)
    assert ids("colour:red") == ["i-1", "i-2", "i-3", "i-4"]


def test_quotes_and_half_typed_input():
    assert parse_filter('name:"web a"').terms[0].value == "web a"
    assert parse_filter('name:"web').words == () and parse_filter('name:"web').terms
    assert parse_filter("region:").empty


def test_a_pasted_megabyte_is_cut_to_what_a_filter_reads_and_said():
    from fleetview.ui.fleet_filter import MAX_CHARS, MAX_TERMS

    flt = parse_filter("web " * 250_000)  # 1 MB: shlex alone took seconds on it
    assert flt.words == ("web",)
    assert flt.errors == ("the filter is 1,000,000 characters long; only the first "
                          f"{MAX_CHARS} are used",)
    many = parse_filter(" ".join(f"w{n}" for n in range(40)))
    assert len(many.words) == MAX_TERMS
    assert f"only the first {MAX_TERMS} are used" in many.errors[0]


def test_bad_yes_keeps_the_instances_on_a_version_marked_bad():
    flagged = FLEET.assign(marked_bad=[None, "1.4.2 was quarantined", None, None])
    assert list(flagged["instance_id"][filter_mask(flagged, parse_filter("bad:yes"))]) == \
        ["i-2"]
    assert len(parse_filter("bad:maybe").errors) == 1


def test_a_value_with_nothing_to_match_is_explained_not_applied():
    flt = parse_filter("version:(((")
    assert not flt.terms
    assert flt.errors and "version:(((" in flt.errors[0] and "e.g. version:1.4" in flt.errors[0]
    assert ids("version:(((") == ["i-1", "i-2", "i-3", "i-4"]


def test_a_tree_node_matches_exactly():
    from dataclasses import replace

    frame = FLEET.assign(scope="prod", group=["web", "webhooks", "api", None])
    mask = filter_mask(frame, replace(parse_filter(""), node=("prod", "us-east-1", "web")))
    assert list(frame["instance_id"][mask]) == ["i-1"]
    region = filter_mask(frame, replace(parse_filter("state:running"),
                                        node=("prod", "us-east-1")))
    assert list(frame["instance_id"][region]) == ["i-1", "i-2", "i-4"]
