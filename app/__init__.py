"""Deno CI: self-hosted CI/CD for Deno projects.

The package imports nothing heavy, so `deno-ci run` and `deno-ci validate` start fast;
the web application comes from `app.factory.create_app`.
"""
