"""Adding a channel kind from a plugin."""

import pytest

from app.models import AttemptOutcome, DeliveryStatus, NotificationDelivery, RunStatus
from app.notifications import channels
from app.notifications.channels import Channel, DeliveryResult, Field, UnknownChannelError
from jobs.notifications import deliver_notification, plan_run_notifications

SENT = []


class PagerChannel(Channel):
    kind = "pager"
    label = "Pager"
    fields = (Field("number", "Number"),)

    def send(self, message):
        SENT.append((self.settings["number"], message.title))
        return DeliveryResult.delivered(200, "paged")


@pytest.fixture
def pager():
    channels.register_channel(PagerChannel)
    yield PagerChannel
    channels._registry.pop("pager", None)


def test_registered_plugin_channel_delivers(pager, add_channel, make_run):
    from app.extensions import db

    add_channel("pager", {"number": "555"}, events=["run_failed"])
    plan_run_notifications(make_run(RunStatus.FAILED).id)
    row = db.session.query(NotificationDelivery).one()

    assert deliver_notification(row.id) == AttemptOutcome.DELIVERED
    assert SENT[-1] == ("555", "Run #1 of web failed")
    assert db.session.get(NotificationDelivery, row.id).status == DeliveryStatus.DELIVERED


def test_entry_point_plugins_are_loaded(monkeypatch):
    class FakeEntryPoint:
        value = "pager_plugin:PagerChannel"

        def load(self):
            return PagerChannel

    monkeypatch.setattr(channels, "_entry_points_loaded", False)
    monkeypatch.setattr(channels, "entry_points", lambda group: [FakeEntryPoint()] if group == channels.ENTRY_POINT_GROUP else [])
    try:
        assert channels.channel_class("pager") is PagerChannel
    finally:
        channels._registry.pop("pager", None)


def test_unknown_kind_and_bad_class_are_rejected():
    with pytest.raises(UnknownChannelError, match="'fax' is not registered"):
        channels.channel_class("fax")
    with pytest.raises(TypeError, match="not a subclass of Channel"):
        channels.register_channel(dict)
