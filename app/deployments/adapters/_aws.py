"""What the AWS adapters share: checked settings, boto3 clients made from the environment's credentials,
and errors that name the action, the target and AWS's response but never a credential.

settings: region ("eu-west-1"), endpoint_url (optional: an emulator such as moto or LocalStack)
credentials: aws_access_key_id, aws_secret_access_key, aws_session_token (optional, for temporary keys)

The credentials must be given: the adapters never fall back to the keys, profile or
instance role of the machine Deno CI runs on, since those belong to the platform and
not to the project. Endpoint environment variables and config files are ignored too
(`ignore_configured_endpoint_urls`), so requests go to AWS or to `endpoint_url` only.
"""

import logging
import re
import time
from collections.abc import Callable

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError, ClientError, ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError,
    NoCredentialsError, ParamValidationError, PartialCredentialsError, ReadTimeoutError,
)

from app.deployments.adapters.base import AdapterError

log = logging.getLogger(__name__)

REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
ACCOUNT = r"\d{12}"
PARTITION = r"aws(?:-[a-z]+)*"
CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
# AWS error codes that mean the keys are wrong, expired or not allowed to do the action.
AUTH_ERRORS = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "ExpiredToken",
               "ExpiredTokenException", "InvalidSignatureException", "AccessDenied", "AccessDeniedException",
               "AuthFailure", "UnauthorizedOperation", "IncompleteSignature", "MissingAuthenticationToken"}
# Few retries: the engine retries a failed step itself, and a long wait would hold its lease.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3},
                       user_agent_extra="deno-ci", ignore_configured_endpoint_urls=True)
REDACTED = "[redacted]"


class Aws:
    """boto3 clients for one target, and calls to them whose every failure becomes an AdapterError."""

    def __init__(self, settings: dict, credentials: dict) -> None:
        self.region = settings.get("region")
        self.endpoint_url = settings.get("endpoint_url") or None
        self._credentials = {key: credentials.get(key) for key in CREDENTIAL_KEYS}
        self._clients: dict = {}

    def problems(self) -> list[str]:
        """List what is missing or invalid in the region, endpoint and credentials, without a request."""
        problems = []
        if not isinstance(self.region, str) or not REGION.match(self.region):
            problems.append(f"Setting 'region' must be an AWS region such as 'eu-west-1', got {self.region!r}")
        if self.endpoint_url is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", str(self.endpoint_url)):
            problems.append(f"Setting 'endpoint_url' must be an http(s) address, got {self.endpoint_url!r}")
        key_id, secret = self._credentials["aws_access_key_id"], self._credentials["aws_secret_access_key"]
        if not key_id or not secret:
            problems.append("The AWS keys are missing from the environment's credentials: set 'aws_access_key_id' "
                            "and 'aws_secret_access_key' (and 'aws_session_token' for temporary keys)")
        elif not isinstance(key_id, str) or not ACCESS_KEY_ID.match(key_id):
            # The key id is not a secret, but a malformed value may be a secret pasted into the wrong field.
            problems.append("The credential 'aws_access_key_id' is not an AWS access key id (16 or more capital "
                            "letters and digits, such as AKIA...)")
        elif not isinstance(secret, str):
            problems.append("The credential 'aws_secret_access_key' must be a string")
        token = self._credentials["aws_session_token"]
        if token is not None and not isinstance(token, str):
            problems.append("The credential 'aws_session_token' must be a string")
        return problems

    def client(self, service: str):
        if service not in self._clients:
            session = boto3.session.Session(
                aws_access_key_id=self._credentials["aws_access_key_id"],
                aws_secret_access_key=self._credentials["aws_secret_access_key"],
                aws_session_token=self._credentials["aws_session_token"] or None,
                region_name=self.region)
            self._clients[service] = session.client(service, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG)
        return self._clients[service]

    def call(self, service: str, operation: str, action: str, **params) -> dict:
        """Run one API operation; `action` names the operation and its target ("read listener arn:..."), for errors."""
        try:
            return getattr(self.client(service), operation)(**params)
        except ClientError as error:
            details = error.response.get("Error", {})
            code, message = _error_parts(details.get("Code", "error"), details.get("Message") or str(error))
            hint = "; check the environment's AWS credentials and their permissions" if code in AUTH_ERRORS else ""
            raise AdapterError(self.redact(f"AWS refused to {action}: {code}: {message}{hint}")) from None
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError) as error:
            where = self.endpoint_url or f"{service} in {self.region}"
            raise AdapterError(self.redact(f"Cannot reach AWS ({where}) to {action}: {error}")) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise AdapterError(f"Cannot {action}: the environment's AWS credentials are missing or incomplete") \
                from None
        except ParamValidationError as error:
            raise AdapterError(self.redact(f"Cannot {action}: the request is invalid: {error}")) from None
        except BotoCoreError as error:
            raise AdapterError(self.redact(f"Cannot {action}: {type(error).__name__}: {error}")) from None

    def redact(self, text: str) -> str:
        """Replace every credential value in `text`, in case a response or an error contains one."""
        for value in self._credentials.values():
            if isinstance(value, str) and len(value) >= 4:
                text = text.replace(value, REDACTED)
        return text

    def environment(self) -> dict[str, str]:
        """The AWS variables for a hook command, so that the AWS CLI or an SDK in it uses the same keys."""
        variables = {"AWS_ACCESS_KEY_ID": self._credentials["aws_access_key_id"] or "",
                     "AWS_SECRET_ACCESS_KEY": self._credentials["aws_secret_access_key"] or "",
                     "AWS_REGION": self.region or "", "AWS_DEFAULT_REGION": self.region or ""}
        if self._credentials["aws_session_token"]:
            variables["AWS_SESSION_TOKEN"] = self._credentials["aws_session_token"]
        if self.endpoint_url:
            variables["AWS_ENDPOINT_URL"] = self.endpoint_url
        return variables


def _error_parts(code: str, message: str) -> tuple[str, str]:
    """Return the code and message of an error response; an XML body that the client could not parse is read here."""
    if message.lstrip().startswith("<"):
        found_code = re.search(r"<Code>([^<]{1,200})</Code>", message)
        found_message = re.search(r"<Message>([^<]{0,1000})</Message>", message)
        code = found_code.group(1) if found_code else code
        message = found_message.group(1) if found_message else message[:500]
    return code, message[:1000]


def poll(check: Callable[[], tuple[bool, str]], timeout: float, interval: float = 1.0) -> tuple[bool, str]:
    """Call `check` until it returns (True, ...) or `timeout` seconds pass; return its last result."""
    deadline = time.monotonic() + timeout
    while True:
        done, state = check()
        remaining = deadline - time.monotonic()
        if done or remaining <= 0:
            return done, state
        time.sleep(min(interval, remaining))


def as_percent(weights: dict[str, float]) -> dict[str, int]:
    """Turn weights of any scale into whole percents adding up to 100, leaving out those at 0."""
    weights = {name: weight for name, weight in weights.items() if weight > 0}
    total = sum(weights.values())
    if not weights:
        return {}
    percent = {name: round(weight * 100 / total) for name, weight in weights.items()}
    # Rounded shares can add up to 99 or 101, so the largest share takes the difference.
    largest = max(percent, key=percent.get)
    percent[largest] += 100 - sum(percent.values())
    return {name: value for name, value in percent.items() if value > 0}
