"""Deployments: environments, releases, the engine that rolls them out, and the adapters to targets."""
