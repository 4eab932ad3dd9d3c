"""Command palette ranking."""

from __future__ import annotations

from fleetview.ui.palette import PaletteEntry, disambiguate, match_score, rank


def entry(title, kind="command", detail=""):
    return PaletteEntry(title, kind, lambda: None, detail=detail)


def test_substring_beats_scattered_letters_and_word_starts_win():
    assert match_score("web", "web") > match_score("web", "a-web-b") > match_score("web", "wxexb")
    assert match_score("zz", "web") is None
    assert match_score("roll", "Timeline: rollback") > match_score("roll", "scrollbar")


def test_rank_finds_groups_and_instances_by_name_then_detail():
    entries = [entry("Poll now"), entry("api", "group", "prod / eu-west-1"),
               entry("web", "group", "prod / us-east-1"),
               entry("web-1a2b", "instance", "i-0abc · 1.4.2 · web")]
    assert [e.title for e in rank(entries, "api")] == ["api"]
    assert [e.title for e in rank(entries, "web")][:2] == ["web", "web-1a2b"]
    assert [e.title for e in rank(entries, "i-0abc")] == ["web-1a2b"]
    assert len(rank(entries, "")) == 4


def test_the_same_name_in_two_places_says_where_each_is():
    ran = []
    entries = [
        PaletteEntry("Roll back api", "command", lambda: ran.append("aws"),
                     detail="demo-aws / us-east-1 · ready: back to 2.3.0"),
        PaletteEntry("Roll back api", "command", lambda: ran.append("gcp"),
                     detail="demo-gcp / us-central1 · ready: back to 2.3.0"),
        PaletteEntry("Roll back web", "command", lambda: None, detail="demo-aws / us-east-1"),
    ]
    shown = disambiguate(entries)
    assert [e.title for e in shown] == ["Roll back api — demo-aws / us-east-1",
                                        "Roll back api — demo-gcp / us-central1",
                                        "Roll back web"]
    assert shown[0].detail == "ready: back to 2.3.0"
    best = rank(shown, "rollback api gcp")[0]
    best.run()
    assert ran == ["gcp"]


def test_backfill_entries_ask_the_collector_to_rebuild_one_scope():
    from fleetview.ui.palette import backfill_entries

    sent = []
    entries = backfill_entries(["prod", "lab"], sent.append)
    assert [e.title for e in entries] == ["Rebuild history of prod from cloud records",
                                          "Rebuild history of lab from cloud records"]
    entries[1].run()
    assert sent == ["backfill lab"]
