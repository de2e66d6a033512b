"""Bitbucket Cloud."""

from app.forges.base import Forge
from app.forges.bitbucket import client, webhook


class Bitbucket(webhook.Webhooks, client.Client, Forge):
    name = "bitbucket"
    title = "Bitbucket"
    event_header = "x-event-key"
