"""Target types and the adapter class of each."""

from app.deployments.adapters.aws_alb import AwsAlbAdapter
from app.deployments.adapters.aws_lambda import AwsLambdaAdapter
from app.deployments.adapters.azure_app_service import AzureAppServiceAdapter
from app.deployments.adapters.base import Adapter, InvalidTargetError
from app.deployments.adapters.gcp_cloud_run import CloudRunAdapter
from app.deployments.adapters.haproxy import HaproxyAdapter
from app.deployments.adapters.nginx import NginxAdapter

ADAPTERS: dict[str, type[Adapter]] = {"nginx": NginxAdapter, "haproxy": HaproxyAdapter,
                                      "aws_alb": AwsAlbAdapter, "aws_lambda": AwsLambdaAdapter,
                                      "azure_app_service": AzureAppServiceAdapter, "gcp_cloud_run": CloudRunAdapter}


def register(kind: str, adapter_class: type[Adapter]) -> None:
    """Add a target type (tests add in-memory ones)."""
    ADAPTERS[kind] = adapter_class


def create_adapter(target: dict, credentials: dict | None = None) -> Adapter:
    """Return the adapter for `target`; raise InvalidTargetError for an unknown type or invalid settings."""
    kind = (target or {}).get("type")
    if kind not in ADAPTERS:
        raise InvalidTargetError([f"Target type {kind!r} is unknown: use one of {', '.join(sorted(ADAPTERS))}"])
    adapter = ADAPTERS[kind](target, credentials)
    adapter.validate()
    return adapter
