"""Commands for API tokens."""

import click

from app.cli import main
from app.cli.platform import platform_app


@main.group()
def token() -> None:
    """Create API tokens."""


@token.command("create")
@click.option("--user", "username", required=True, help="User the token acts as.")
@click.option("--scope", type=click.Choice(["read", "write", "admin"]), required=True,
              help="What the token may do: read, write (also trigger and cancel) or admin (also users and members).")
@click.option("--expires-in-days", type=click.IntRange(1, 366), default=90, show_default=True,
              help="Days until the token expires.")
@click.option("--name", default="cli", show_default=True, help="Name shown in token lists.")
def token_create(username: str, scope: str, expires_in_days: int, name: str) -> None:
    """Create an API token for USER and print it (it is shown this once)."""
    from app.auth.accounts import find_user
    from app.auth.audit import audit
    from app.auth.tokens import create_token

    with platform_app():
        user = find_user(username)
        if user is None:
            raise click.ClickException(f"User {username!r} not found.")
        if not user.active:
            raise click.ClickException(f"User {username!r} is deactivated; activate the account first.")
        created, value = create_token(user, name, scope, expires_in_days)
        audit("token_create", target=f"token {created.prefix}... of user {username}", actor=user,
              detail=f"scope {scope}, {expires_in_days} days, created with the CLI")
        click.echo(f"Token {created.name!r} for {username} (scope {scope}, expires {created.expires_at:%Y-%m-%d}); "
                   "it is shown only now:", err=True)
        click.echo(value)
