"""The plan preview: what it tells the operator before anything changes, and when it lets
them run it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel

from fleetview.actions.prepare import Prepared
from fleetview.domain.actions import KINDS, ActionPlan, PlanStep
from fleetview.ui.plan_dialog import PlanDialog


def rollback_plan(provider="aws", mechanism="instance-refresh", n=3) -> ActionPlan:
    ids = tuple(f"i-{k}" for k in range(n))
    return ActionPlan(
        "rollback", provider, "prod", "us-east-1", "api", ids, ("1.4.0",), "1.3.0",
        "ami-130", (PlanStep("refresh", "Start an instance refresh to 1.3.0", ids),),
        mechanism, batch_size=1, min_healthy_percent=90, capacity_kept="at least 2 of 3",
        irreversible=tuple(f"{i} is terminated" for i in ids))


def replace_plan(provider="aws", mechanism="terminate-in-asg") -> ActionPlan:
    return ActionPlan(
        "replace", provider, "prod", "us-east-1", "api", ("i-0",), ("1.4.0",), "1.4.0",
        "ami-140", (PlanStep("terminate", "Terminate i-0", ("i-0",)),), mechanism)


def rollback(**kw) -> Prepared:
    fields = {"plan": rollback_plan(), "identity": "arn:aws:iam::1:user/ana",
              "current_version": "1.4.0", "versions": ["1.3.0", "1.2.0"],
              "estimate_s": 600.0, **kw}
    return Prepared("rollback", "prod", "us-east-1", "api", **fields)


def replace(**kw) -> Prepared:
    fields = {"plan": replace_plan(), "identity": "arn:aws:iam::1:user/ana",
              "current_version": "1.4.0", **kw}
    return Prepared("replace", "prod", "us-east-1", "api", **fields)


def rows(dialog: PlanDialog) -> dict[str, str]:
    """The form as the operator reads it: label -> text (a combo box: its current item)."""
    out = {}
    for r in range(dialog.form.rowCount()):
        label = dialog.form.itemAt(r, dialog.form.ItemRole.LabelRole)
        field = dialog.form.itemAt(r, dialog.form.ItemRole.FieldRole).widget()
        if isinstance(field, QLabel):
            out[label.widget().text()] = field.text()
        elif isinstance(field, QComboBox):
            out[label.widget().text()] = field.currentText()
        else:
            out[label.widget().text()] = type(field).__name__
    return out


@pytest.fixture
def open_dialog(qtbot):
    def make(prepared: Prepared, replan=None) -> PlanDialog:
        dialog = PlanDialog(prepared, replan=replan)
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog
    return make


def test_a_rollback_says_what_where_from_and_to(open_dialog):
    dialog = open_dialog(rollback())
    assert dialog.title.text() == "Roll back api to 1.3.0 (prod · us-east-1)"
    assert dialog.windowTitle() == "Roll back api to 1.3.0"
    assert dialog.run_button.text() == KINDS["rollback"].confirm
    shown = rows(dialog)
    assert shown["Runs now"] == "1.4.0"
    assert shown["Target version"] == "1.3.0"
    assert shown["Acting as"] == "arn:aws:iam::1:user/ana"
    assert shown["Batch size"] == "1 at a time, minimum healthy 90%"
    assert shown["Estimated duration"].startswith("about 10 min")
    assert shown["Capacity"] == "at least 2 of 3"
    assert shown["Instances"] == "3: i-0, i-1, i-2"
    assert "i-0 is terminated" in shown["Cannot be undone"]


def test_a_replacement_says_what_it_comes_back_with(open_dialog):
    dialog = open_dialog(replace())
    assert dialog.title.text() == "Replace i-0 in api (prod · us-east-1)"
    assert dialog.run_button.text() == KINDS["replace"].confirm
    shown = rows(dialog)
    assert shown["Comes back with"] == "1.4.0 (ami-140)"
    assert "Target version" not in shown and "Batch size" not in shown


@pytest.mark.parametrize(("plan", "words"), [
    (rollback_plan("aws", "instance-refresh"),
     "AWS instance refresh (the Auto Scaling group replaces instances"),
    (rollback_plan("gcp", "mig-update"), "GCP managed instance group update"),
    (replace_plan("aws", "terminate-in-asg"), "Terminate in the Auto Scaling group;"),
    (replace_plan("gcp", "recreate-instances"),
     "GCP recreateInstances: the managed instance group recreates"),
    (rollback_plan("aws", "rolling-replacement"), "Rolling replacement by FleetView"),
])
def test_the_mechanism_is_told_in_its_clouds_words(open_dialog, plan, words):
    prepared = (rollback if plan.kind == "rollback" else replace)(plan=plan)
    assert words in rows(open_dialog(prepared))["Mechanism"]


def test_run_waits_for_a_reason_and_enter_confirms(qtbot, open_dialog):
    dialog = open_dialog(rollback())
    assert not dialog.run_button.isEnabled()
    qtbot.keyClicks(dialog.reason, "   ")
    assert not dialog.run_button.isEnabled()
    qtbot.keyClicks(dialog.reason, "1.4.0 leaks memory")
    assert dialog.run_button.isEnabled()
    with qtbot.waitSignal(dialog.confirmed) as confirmed:
        qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    assert confirmed.args == ["1.4.0 leaks memory", "", ""]
    assert not dialog.isVisible()


def test_a_protected_group_needs_its_name_typed(qtbot, open_dialog):
    dialog = open_dialog(rollback(protected="env=prod"))
    assert dialog.typed.isVisible() and "env=prod" in dialog.typed_label.text()
    qtbot.keyClicks(dialog.reason, "bad deploy")
    qtbot.keyClicks(dialog.typed, "ap")
    assert not dialog.run_button.isEnabled()
    qtbot.keyClicks(dialog.typed, "i")
    assert dialog.run_button.isEnabled()


def test_a_refused_plan_says_why_and_cannot_run(qtbot, open_dialog):
    dialog = open_dialog(rollback(plan=None, versions=[],
                                  refusal="another action is already running on api"))
    assert dialog.refusal.isVisible()
    assert dialog.refusal.text() == "Cannot run: another action is already running on api"
    assert dialog.title.text() == "Roll back group api (prod · us-east-1)"
    qtbot.keyClicks(dialog.reason, "try anyway")
    assert not dialog.run_button.isEnabled()


def test_choosing_another_target_plans_again(qtbot, open_dialog):
    asked = []
    dialog = open_dialog(rollback(), replan=asked.append)
    dialog.target.activated.emit(1)  # the operator picks 1.2.0
    assert asked == ["1.2.0"]
    assert not dialog.run_button.isEnabled()  # until the new plan is shown
    plan = rollback_plan()
    newer = rollback(plan=ActionPlan(**{**vars(plan), "to_version": "1.2.0"}),
                     versions=["1.2.0", "1.3.0"])
    dialog.show_prepared(newer)
    assert dialog.title.text() == "Roll back api to 1.2.0 (prod · us-east-1)"
    assert rows(dialog)["Target version"] == "1.2.0"


# -- no return to a bad version, and a rollout in flight ----------------------------------------

BAD_WHY = "1.3.0 was rolled back from on api by ana at 2026-01-02 10:00 UTC: 1.3.0 leaks memory"


def test_bad_versions_are_marked_in_the_chooser(open_dialog):
    dialog = open_dialog(rollback(versions=["1.3.0", "1.2.0", "1.1.0"],
                                  bad={"1.1.0": "1.1.0 was quarantined: corrupts uploads"},
                                  plan=ActionPlan(**{**vars(rollback_plan()),
                                                     "to_version": "1.2.0"})))
    texts = [dialog.target.itemText(i) for i in range(dialog.target.count())]
    assert texts == ["1.3.0", "1.2.0", "1.1.0  ⚠ marked bad"]
    assert dialog.target.itemData(2) == "1.1.0"
    assert "corrupts uploads" in dialog.target.itemData(2, Qt.ItemDataRole.ToolTipRole)
    assert not dialog.bad.isVisible() and not dialog.typed_version.isVisible()


def test_choosing_a_bad_version_says_why_and_needs_it_typed(qtbot, open_dialog):
    asked = []
    dialog = open_dialog(rollback(bad={"1.2.0": BAD_WHY}), replan=asked.append)
    dialog.target.activated.emit(1)  # the operator picks 1.2.0, which is marked bad
    assert asked == ["1.2.0"]  # the chooser hands over the version, not its label
    plan = ActionPlan(**{**vars(rollback_plan()), "to_version": "1.2.0"})
    dialog.show_prepared(rollback(plan=plan, versions=["1.2.0", "1.3.0"],
                                  bad={"1.2.0": BAD_WHY}))
    assert dialog.bad.isVisible()
    assert dialog.bad.text() == f"⚠ 1.2.0 is marked bad: {BAD_WHY}"
    assert dialog.typed_version.isVisible()
    assert "type 1.2.0 to confirm" in dialog.typed_version_label.text()
    assert dialog.focusWidget() is dialog.typed_version
    qtbot.keyClick(dialog.typed_version, Qt.Key.Key_Return)  # nothing typed: on to the reason
    assert dialog.focusWidget() is dialog.reason and dialog.isVisible()
    qtbot.keyClicks(dialog.reason, "1.3.0 is worse")
    assert not dialog.run_button.isEnabled()
    qtbot.keyClicks(dialog.typed_version, "1.2")
    assert not dialog.run_button.isEnabled()
    qtbot.keyClicks(dialog.typed_version, ".0")
    assert dialog.run_button.isEnabled()
    with qtbot.waitSignal(dialog.confirmed) as confirmed:
        qtbot.keyClick(dialog.reason, Qt.Key.Key_Return)
    assert confirmed.args == ["1.3.0 is worse", "", "1.2.0"]  # Confirmation.typed_version


def test_a_rollout_in_flight_is_said_before_the_plan(open_dialog):
    dialog = open_dialog(rollback(note="will stop the update under way"))
    assert dialog.note.isVisible()
    assert dialog.note.text() == ("Rollout in flight: this rollback will stop the update "
                                  "under way, then roll back")
    assert not open_dialog(rollback()).note.isVisible()


def test_values_from_the_cloud_are_shown_as_text_not_markup(open_dialog):
    plan = ActionPlan(**{**vars(rollback_plan()), "group": "<i>api</i>",
                         "notes": ("<img src=x> draining",)})
    dialog = open_dialog(rollback(plan=plan, identity="<b>arn</b>", protected="env=<b>prod</b>",
                                  refusal="group <i>api</i> is busy"))
    acting = dialog.findChild(QLabel, "actingAs")
    assert acting.textFormat() == Qt.TextFormat.PlainText and acting.text() == "<b>arn</b>"
    assert dialog.title.textFormat() == Qt.TextFormat.PlainText
    assert dialog.refusal.textFormat() == Qt.TextFormat.PlainText
    assert "&lt;b&gt;prod&lt;/b&gt;" in dialog.typed_label.text()
    note = rows(dialog)["Note"]
    assert note == "<img src=x> draining"
