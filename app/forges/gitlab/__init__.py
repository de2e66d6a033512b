"""GitLab.com and self-hosted GitLab."""

from app.forges.base import Forge
from app.forges.gitlab import client, webhook


class GitLab(webhook.Webhooks, client.Client, Forge):
    name = "gitlab"
    title = "GitLab"
    event_header = "x-gitlab-event"
