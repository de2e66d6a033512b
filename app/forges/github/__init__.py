"""GitHub and GitHub Enterprise Server."""

from app.forges.base import Forge
from app.forges.github import client, webhook


class GitHub(webhook.Webhooks, client.Client, Forge):
    name = "github"
    title = "GitHub"
    event_header = "x-github-event"
