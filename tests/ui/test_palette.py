"""Command palette ranking."""

from __future__ import annotations

from fleetview.ui.palette import PaletteEntry, match_score, rank


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
