"""The AWS ALB and Lambda adapters against moto in server mode on 127.0.0.1, alone and through the engine.

moto runs as its own process for the module and is emptied before each test. Each test
builds what it needs through boto3 (a VPC, subnets, an ALB with a listener and two target
groups with running instances, or a Lambda function) and reads the results back through
boto3 too, so the adapters' answers are compared with what the emulated AWS holds.
"""

import io
import json
import sys
import zipfile

import boto3
import pytest
import requests

from app.deployments.adapters import _aws
from app.deployments.adapters.base import AdapterError, InvalidTargetError
from app.deployments.adapters.registry import create_adapter
from tests.deployments.servers import MotoServer, free_port

REGION = "eu-west-1"
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY-deno-ci-test-secret"
CREDENTIALS = {"aws_access_key_id": ACCESS_KEY_ID, "aws_secret_access_key": SECRET}


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def aws(moto):
    """An empty emulated AWS account and boto3 clients to it."""
    moto.reset()
    return Account(moto.url)


class Account:
    """boto3 clients to moto, and builders of the resources the adapters drive."""

    def __init__(self, url: str, credentials: dict | None = None) -> None:
        keys = credentials or CREDENTIALS
        self.url = url
        self.session = boto3.session.Session(region_name=REGION, aws_access_key_id=keys["aws_access_key_id"],
                                             aws_secret_access_key=keys["aws_secret_access_key"])
        self.ec2, self.elb = self.client("ec2"), self.client("elbv2")
        self.lambda_, self.iam = self.client("lambda"), self.client("iam")

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.url)

    # -- ALB ------------------------------------------------------------------------------------------

    def alb(self, *, healthy: bool = True, **extra) -> dict:
        """An ALB whose listener forwards to `web-blue`; `web-green` beside it; return the target settings."""
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{number}.0/24",
                                          AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
                   for number, zone in ((1, "a"), (2, "b"))]
        balancer = self.elb.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]
        groups = {}
        for slot in ("blue", "green"):
            groups[slot] = self.elb.create_target_group(
                Name=f"web-{slot}", Protocol="HTTP", Port=8000, VpcId=vpc,
                TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
            instance = self.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                              SubnetId=subnets[0])["Instances"][0]["InstanceId"]
            self.elb.register_targets(TargetGroupArn=groups[slot], Targets=[{"Id": instance, "Port": 8000}])
            if not healthy:
                self.ec2.stop_instances(InstanceIds=[instance])
        listener = self.elb.create_listener(
            LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["blue"]}])["Listeners"][0]
        self.balancer_arn = balancer["LoadBalancerArn"]
        return {"type": "aws_alb", "region": REGION, "endpoint_url": self.url,
                "listener_arn": listener["ListenerArn"], "target_groups": groups, **extra}

    def listener_weights(self, target: dict, arn: str | None = None) -> dict[str, int]:
        """{target group name: weight} of the listener's forward action, as moto holds it."""
        arn = arn or target["listener_arn"]
        actions = self.elb.describe_listeners(ListenerArns=[arn])["Listeners"][0]["DefaultActions"]
        return _forward_weights(actions)

    def release_tags(self, target: dict) -> dict[str, str | None]:
        arns = list(target["target_groups"].values())
        described = self.elb.describe_tags(ResourceArns=arns)["TagDescriptions"]
        tags = {item["ResourceArn"]: {tag["Key"]: tag["Value"] for tag in item["Tags"]} for item in described}
        return {slot: tags[arn].get("deno-ci:release") for slot, arn in target["target_groups"].items()}

    # -- Lambda ---------------------------------------------------------------------------------------

    def function(self, name: str = "web") -> dict:
        """A Lambda function with code "v0"; return the target settings."""
        role = self.iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))
        self.lambda_.create_function(FunctionName=name, Runtime="nodejs20.x", Role=role["Role"]["Arn"],
                                     Handler="index.handler", Code={"ZipFile": _zip_bytes("v0")})
        return {"type": "aws_lambda", "region": REGION, "endpoint_url": self.url, "function_name": name,
                "alias": "live"}

    def alias(self, name: str = "web", alias: str = "live") -> dict:
        answer = self.lambda_.get_alias(FunctionName=name, Name=alias)
        return {"version": answer["FunctionVersion"],
                "weights": (answer.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}}

    def versions(self, name: str = "web") -> list[str]:
        return [item["Version"] for item in self.lambda_.list_versions_by_function(FunctionName=name)["Versions"]
                if item["Version"] != "$LATEST"]


def _forward_weights(actions: list[dict]) -> dict[str, int]:
    forward = next(action for action in actions if action["Type"] == "forward")
    groups = (forward.get("ForwardConfig") or {}).get("TargetGroups") or [
        {"TargetGroupArn": forward["TargetGroupArn"], "Weight": 1}]
    return {group["TargetGroupArn"].split("/")[1]: group.get("Weight", 1) for group in groups}


def _zip_bytes(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.js", f"exports.handler = async () => ({json.dumps(text)});\n")
    return buffer.getvalue()


@pytest.fixture
def zips(tmp_path):
    """Make Lambda release zips: zips("v1") is a function answering "v1"."""
    folder = tmp_path / "zips"
    folder.mkdir()

    def make(name: str, text: str | None = None) -> str:
        path = folder / f"{name}.zip"
        path.write_bytes(_zip_bytes(text or name))
        return str(path)

    return make


def _refuse_requests(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a request was sent to AWS")

    monkeypatch.setattr(_aws.Aws, "call", refuse)


@pytest.fixture
def no_requests(monkeypatch):
    """Fail the test if an adapter sends any request to AWS."""
    _refuse_requests(monkeypatch)


def _live_on_v1_and_v2_installed(adapter) -> None:
    adapter.prepare("v1", "/releases/v1.tar.gz", None)
    adapter.set_traffic("v1", 100, None)
    adapter.prepare("v2", "/releases/v2.tar.gz", "v1")


# -- ALB --------------------------------------------------------------------------------------------


def test_alb_lifecycle_reads_back_what_the_listener_holds(aws):
    target = aws.alb()
    adapter = create_adapter(target, CREDENTIALS)

    first = adapter.prepare("v1", "/releases/v1.tar.gz", None)
    assert first == {"target group web-blue": 100}
    assert aws.release_tags(target) == {"blue": None, "green": "v1"}
    adapter.wait_until_ready("v1", 5)
    assert adapter.set_traffic("v1", 100, None) == {"v1": 100}
    assert aws.listener_weights(target) == {"web-blue": 0, "web-green": 100}

    assert adapter.prepare("v2", "/releases/v2.tar.gz", "v1") == {"v1": 100}
    assert aws.release_tags(target) == {"blue": "v2", "green": "v1"}
    adapter.wait_until_ready("v2", 5)
    assert adapter.set_traffic("v2", 10, "v1") == {"v1": 90, "v2": 10}
    assert aws.listener_weights(target) == {"web-blue": 10, "web-green": 90}
    assert adapter.set_traffic("v2", 50, "v1") == {"v1": 50, "v2": 50}
    assert aws.listener_weights(target) == {"web-blue": 50, "web-green": 50}

    state = create_adapter(target, CREDENTIALS).describe()
    assert state.split == {"v1": 50, "v2": 50}
    assert state.installed == ["v1", "v2"]

    assert adapter.promote("v2", "v1") == {"v2": 100}
    assert aws.listener_weights(target) == {"web-blue": 100, "web-green": 0}
    assert adapter.rollback("v1", "v2") == {"v1": 100}
    assert aws.listener_weights(target) == {"web-blue": 0, "web-green": 100}

    adapter.promote("v2", "v1")
    adapter.cleanup(["v2"])
    assert aws.release_tags(target) == {"blue": "v2", "green": None}
    assert adapter.describe().installed == ["v2"]
    assert aws.listener_weights(target) == {"web-blue": 100, "web-green": 0}


def test_alb_describe_reads_weights_set_by_hand_as_percent(aws):
    target = aws.alb()
    adapter = create_adapter(target, CREDENTIALS)
    _live_on_v1_and_v2_installed(adapter)
    blue, green = target["target_groups"]["blue"], target["target_groups"]["green"]
    aws.elb.modify_listener(ListenerArn=target["listener_arn"], DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": blue, "Weight": 333}, {"TargetGroupArn": green, "Weight": 666}]}}])

    assert adapter.describe().split == {"v2": 33, "v1": 67}


def test_alb_every_call_twice_is_the_same_as_once(aws, tmp_path):
    calls = tmp_path / "installs"
    target = aws.alb(install_command=f"echo {{release}} >> {calls}")
    adapter = create_adapter(target, CREDENTIALS)

    assert adapter.prepare("v1", "/releases/v1.tar.gz", None) == adapter.prepare("v1", "/releases/v1.tar.gz", None)
    assert adapter.set_traffic("v1", 100, None) == adapter.set_traffic("v1", 100, None) == {"v1": 100}
    assert adapter.prepare("v2", "/r/v2.tar.gz", "v1") == adapter.prepare("v2", "/r/v2.tar.gz", "v1") == {"v1": 100}
    assert calls.read_text().split() == ["v1", "v2"]
    assert adapter.set_traffic("v2", 10, "v1") == adapter.set_traffic("v2", 10, "v1") == {"v1": 90, "v2": 10}
    assert aws.listener_weights(target) == {"web-blue": 10, "web-green": 90}
    assert adapter.promote("v2", "v1") == adapter.promote("v2", "v1") == {"v2": 100}
    assert adapter.rollback("v1", "v2") == adapter.rollback("v1", "v2") == {"v1": 100}
    adapter.cleanup(["v1"])
    adapter.cleanup(["v1"])
    assert aws.release_tags(target) == {"blue": None, "green": "v1"}
    assert aws.listener_weights(target) == {"web-blue": 0, "web-green": 100}


def test_alb_prepare_takes_back_a_leftover_canary_share(aws):
    target = aws.alb()
    adapter = create_adapter(target, CREDENTIALS)
    _live_on_v1_and_v2_installed(adapter)
    adapter.set_traffic("v2", 20, "v1")

    # A crash left v2 at 20 %; the next deployment, v3, takes v2's target group.
    assert adapter.prepare("v3", "/releases/v3.tar.gz", "v1") == {"v1": 100}
    assert aws.release_tags(target) == {"blue": "v3", "green": "v1"}
    assert aws.listener_weights(target) == {"web-blue": 0, "web-green": 100}


def test_alb_install_command_gets_the_release_and_the_keys(aws, tmp_path):
    script = tmp_path / "install.py"
    script.write_text(
        "import os, sys, boto3\n"
        "release, artifact, arn = sys.argv[1:4]\n"
        "elb = boto3.client('elbv2')\n"
        "elb.describe_target_groups(TargetGroupArns=[arn])\n"
        f"open({str(tmp_path / 'seen')!r}, 'w').write(' '.join([release, artifact, arn.split('/')[1], "
        "os.environ['AWS_REGION'], str('SECRET_KEY' in os.environ)]))\n")
    target = aws.alb(install_command=f"{sys.executable} {script} {{release}} {{artifact}} {{target_group_arn}}")

    create_adapter(target, CREDENTIALS).prepare("v1", "/releases/v 1.tar.gz", None)

    assert (tmp_path / "seen").read_text() == f"v1 /releases/v 1.tar.gz web-green {REGION} False"


def test_alb_failing_install_command_leaves_the_target_group_untagged_and_hides_the_secret(aws):
    target = aws.alb(install_command="echo \"denied for $AWS_SECRET_ACCESS_KEY\" >&2; exit 3")
    adapter = create_adapter(target, CREDENTIALS)

    with pytest.raises(AdapterError) as raised:
        adapter.prepare("v1", "/releases/v1.tar.gz", None)

    assert "exited with 3: denied for [redacted]" in str(raised.value)
    assert SECRET not in str(raised.value)
    assert aws.release_tags(target) == {"blue": None, "green": None}


def test_alb_wait_until_ready_times_out_without_healthy_targets(aws):
    target = aws.alb(healthy=False)
    adapter = create_adapter(target, CREDENTIALS)
    adapter.prepare("v1", "/releases/v1.tar.gz", None)

    with pytest.raises(AdapterError, match=r"web-green of release 'v1' has fewer than 1 healthy target\(s\) after "
                                           r"1 s: 1 unused \(Target.InvalidState\)"):
        adapter.wait_until_ready("v1", 1)


def test_alb_traffic_through_a_listener_rule(aws):
    target = aws.alb()
    rule = aws.elb.create_rule(ListenerArn=target["listener_arn"], Priority=10, Conditions=[
        {"Field": "path-pattern", "Values": ["/api/*"]}], Actions=[
        {"Type": "forward", "TargetGroupArn": target["target_groups"]["blue"]}])["Rules"][0]
    target["rule_arn"] = rule["RuleArn"]
    adapter = create_adapter(target, CREDENTIALS)
    _live_on_v1_and_v2_installed(adapter)

    assert adapter.set_traffic("v2", 30, "v1") == {"v1": 70, "v2": 30}

    actions = aws.elb.describe_rules(RuleArns=[rule["RuleArn"]])["Rules"][0]["Actions"]
    assert _forward_weights(actions) == {"web-blue": 30, "web-green": 70}
    assert aws.listener_weights(target) == {"web-blue": 1}


def test_alb_preview_listener_forwards_to_the_new_release(aws):
    target = aws.alb()
    preview = aws.elb.create_listener(
        LoadBalancerArn=aws.balancer_arn, Protocol="HTTP", Port=8443,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": target["target_groups"]["blue"]}])["Listeners"][0]
    target.update(preview_listener_arn=preview["ListenerArn"], preview_url="http://web.example.com:8443/")
    adapter = create_adapter(target, CREDENTIALS)
    assert adapter.capabilities.preview_url

    _live_on_v1_and_v2_installed(adapter)

    assert aws.listener_weights(target, preview["ListenerArn"]) == {"web-blue": 1}
    assert aws.release_tags(target)["blue"] == "v2"
    assert adapter.preview_url("v2") == "http://web.example.com:8443/"
    assert aws.listener_weights(target) == {"web-blue": 0, "web-green": 100}


@pytest.mark.parametrize("weight", [101, -1, 12.5, "50", True])
def test_alb_weight_outside_range_is_rejected_before_any_request(aws, monkeypatch, weight):
    target = aws.alb()
    adapter = create_adapter(target, CREDENTIALS)
    _live_on_v1_and_v2_installed(adapter)
    _refuse_requests(monkeypatch)

    with pytest.raises(InvalidTargetError, match="Weight"):
        adapter.set_traffic("v2", weight, "v1")

    monkeypatch.undo()
    assert adapter.describe().split == {"v1": 100}


LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
BLUE = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-blue/7bb3a0648c28ceb4"
GREEN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-green/5e4da09d89aa5321"
ALB = {"type": "aws_alb", "region": REGION, "listener_arn": LISTENER, "target_groups": {"blue": BLUE, "green": GREEN}}


@pytest.mark.parametrize(("change", "problem"), [
    ({"listener_arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/net/web/50dc6c495c0c9188/"
                      "f2f7dc8efc522ab2"}, "Setting 'listener_arn' must be an ALB listener ARN"),
    ({"listener_arn": "listener/app/web"}, "Setting 'listener_arn' must be an ALB listener ARN"),
    ({"region": None}, "Setting 'region' must be an AWS region"),
    ({"region": "Europe"}, "Setting 'region' must be an AWS region"),
    ({"region": "us-east-1"}, "Setting 'listener_arn' is in region 'eu-west-1', not in the target's region"),
    ({"target_groups": {"blue": BLUE}}, "needs 2 to 5 target groups"),
    ({"target_groups": {"blue": BLUE, "green": BLUE}}, "names the same target group twice"),
    ({"target_groups": {"blue": BLUE, "green": "web-green"}}, "Target group 'green' needs a target group ARN"),
    ({"target_groups": {"blue": BLUE, "green": GREEN.replace("123456789012", "210987654321")}},
     "in another AWS account than the listener"),
    ({"rule_arn": LISTENER + "/1"}, "Setting 'rule_arn' must be an ALB listener rule ARN"),
    ({"endpoint_url": "127.0.0.1:4566"}, "Setting 'endpoint_url' must be an http(s) address"),
    ({"min_healthy_targets": 0}, "min_healthy_targets"),
])
def test_alb_invalid_settings_are_rejected_before_any_request(no_requests, change, problem):
    with pytest.raises(InvalidTargetError) as raised:
        create_adapter({**ALB, **change}, CREDENTIALS)

    assert any(problem in item for item in raised.value.problems), raised.value.problems


@pytest.mark.parametrize("credentials", [None, {}, {"aws_access_key_id": ACCESS_KEY_ID},
                                         {"aws_access_key_id": SECRET, "aws_secret_access_key": SECRET}])
def test_missing_or_malformed_keys_are_rejected_without_echoing_them(no_requests, credentials):
    for target in (ALB, {"type": "aws_lambda", "region": REGION, "function_name": "web"}):
        with pytest.raises(InvalidTargetError, match="aws_access_key_id") as raised:
            create_adapter(target, credentials)
        assert SECRET not in str(raised.value)


def test_alb_unreachable_endpoint_gives_adapter_error_without_the_secret():
    port = free_port()
    adapter = create_adapter({**ALB, "endpoint_url": f"http://127.0.0.1:{port}"}, CREDENTIALS)

    with pytest.raises(AdapterError) as raised:
        adapter.describe()

    message = str(raised.value)
    assert message.startswith(f"Cannot reach AWS (http://127.0.0.1:{port}) to read listener {LISTENER}: ")
    assert SECRET not in message
    assert ACCESS_KEY_ID not in message


@pytest.fixture
def moto_with_auth(tmp_path):
    """A moto server that checks keys like AWS, with one IAM user allowed everything; yield it and its keys."""
    server = MotoServer(tmp_path, auth=True)
    try:
        server_admin = boto3.client("iam", region_name=REGION, endpoint_url=server.url,
                                    aws_access_key_id="AKIAADMINBOOTSTRAP01", aws_secret_access_key="bootstrap")
        # moto lets the next three requests in unchecked: they create the user and its keys.
        requests.post(f"{server.url}/moto-api/reset-auth", data="3", timeout=10).raise_for_status()
        server_admin.create_user(UserName="deployer")
        server_admin.put_user_policy(UserName="deployer", PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = server_admin.create_access_key(UserName="deployer")["AccessKey"]
        yield server, {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    finally:
        server.stop()


def test_wrong_keys_give_adapter_error_without_the_secret(moto_with_auth):
    server, keys = moto_with_auth
    account = Account(server.url, keys)
    alb, function = account.alb(), account.function()
    # The right keys work. (moto's Lambda refuses even the right keys' signature on GET requests, so only the
    # ALB shows it.)
    assert create_adapter(alb, keys).describe().split == {"target group web-blue": 100}

    wrong_secret = {**keys, "aws_secret_access_key": SECRET}
    unknown_key = {"aws_access_key_id": "AKIAUNKNOWNKEY000000", "aws_secret_access_key": SECRET}
    for target in (alb, function):
        for credentials, code in ((wrong_secret, "SignatureDoesNotMatch"), (unknown_key, "InvalidClientTokenId")):
            with pytest.raises(AdapterError) as raised:
                create_adapter(target, credentials).describe()
            message = str(raised.value)
            assert message.startswith("AWS refused to "), message
            assert f"{code}: " in message, message
            assert message.endswith("; check the environment's AWS credentials and their permissions")
            assert SECRET not in message and keys["aws_secret_access_key"] not in message
            assert "<" not in message


# -- Lambda -----------------------------------------------------------------------------------------


def test_lambda_lifecycle_reads_back_what_the_alias_holds(aws, zips):
    target = aws.function()
    adapter = create_adapter(target, CREDENTIALS)

    assert adapter.prepare("v1", zips("v1"), None) == {}
    adapter.wait_until_ready("v1", 5)
    assert adapter.set_traffic("v1", 100, None) == {"v1": 100}
    v1 = aws.alias()["version"]
    assert aws.alias() == {"version": v1, "weights": {}}

    assert adapter.prepare("v2", zips("v2"), "v1") == {"v1": 100}
    adapter.wait_until_ready("v2", 5)
    v2 = aws.lambda_.get_alias(FunctionName="web", Name="release-v2")["FunctionVersion"]
    assert v2 != v1
    assert aws.lambda_.get_function(FunctionName="web", Qualifier=v2)["Configuration"]["CodeSha256"] != \
        aws.lambda_.get_function(FunctionName="web", Qualifier=v1)["Configuration"]["CodeSha256"]

    assert adapter.set_traffic("v2", 10, "v1") == {"v1": 90, "v2": 10}
    assert aws.alias() == {"version": v1, "weights": {v2: 0.1}}
    assert adapter.set_traffic("v2", 50, "v1") == {"v1": 50, "v2": 50}
    assert aws.alias() == {"version": v1, "weights": {v2: 0.5}}

    state = create_adapter(target, CREDENTIALS).describe()
    assert state.split == {"v1": 50, "v2": 50}
    assert state.installed == ["v1", "v2"]

    assert adapter.promote("v2", "v1") == {"v2": 100}
    assert aws.alias() == {"version": v2, "weights": {}}
    assert adapter.rollback("v1", "v2") == {"v1": 100}
    assert aws.alias() == {"version": v1, "weights": {}}

    adapter.promote("v2", "v1")
    adapter.cleanup(["v2"])
    assert adapter.describe().installed == ["v2"]
    assert aws.versions() == [v2]
    assert aws.alias() == {"version": v2, "weights": {}}


def test_lambda_weights_are_read_back_as_percent(aws, zips):
    target = aws.function()
    adapter = create_adapter(target, CREDENTIALS)
    adapter.prepare("v1", zips("v1"), None)
    adapter.set_traffic("v1", 100, None)
    adapter.prepare("v2", zips("v2"), "v1")
    v1, v2 = aws.alias()["version"], aws.lambda_.get_alias(FunctionName="web", Name="release-v2")["FunctionVersion"]

    for weight in (1, 10, 25, 33, 50, 99):
        assert adapter.set_traffic("v2", weight, "v1") == {"v1": 100 - weight, "v2": weight}
        assert aws.alias()["weights"] == {v2: weight / 100}
    aws.lambda_.update_alias(FunctionName="web", Name="live", FunctionVersion=v1,
                             RoutingConfig={"AdditionalVersionWeights": {v2: 0.126}})
    assert adapter.describe().split == {"v1": 87, "v2": 13}


def test_lambda_every_call_twice_is_the_same_as_once(aws, zips):
    target = aws.function()
    adapter = create_adapter(target, CREDENTIALS)

    assert adapter.prepare("v1", zips("v1"), None) == adapter.prepare("v1", zips("v1"), None) == {}
    assert adapter.set_traffic("v1", 100, None) == adapter.set_traffic("v1", 100, None) == {"v1": 100}
    assert adapter.prepare("v2", zips("v2"), "v1") == adapter.prepare("v2", zips("v2"), "v1") == {"v1": 100}
    assert len(aws.versions()) == 2
    assert adapter.set_traffic("v2", 10, "v1") == adapter.set_traffic("v2", 10, "v1") == {"v1": 90, "v2": 10}
    assert adapter.promote("v2", "v1") == adapter.promote("v2", "v1") == {"v2": 100}
    assert adapter.rollback("v1", "v2") == adapter.rollback("v1", "v2") == {"v1": 100}
    adapter.cleanup(["v1"])
    adapter.cleanup(["v1"])
    assert adapter.describe().installed == ["v1"]
    assert len(aws.versions()) == 1


def test_lambda_releases_with_the_same_code_get_versions_of_their_own(aws, zips):
    target = aws.function()
    adapter = create_adapter(target, CREDENTIALS)
    adapter.prepare("v1", zips("v1", "same"), None)
    adapter.set_traffic("v1", 100, None)
    adapter.prepare("v1.1", zips("v1.1", "same"), "v1")

    assert adapter.set_traffic("v1.1", 20, "v1") == {"v1": 80, "v1.1": 20}
    assert len(aws.versions()) == 2


def test_lambda_takes_a_version_already_published(aws):
    target = aws.function()
    published = aws.lambda_.publish_version(FunctionName="web")["Version"]
    arn = aws.lambda_.get_function_configuration(FunctionName="web", Qualifier=published)["FunctionArn"]
    adapter = create_adapter(target, CREDENTIALS)

    adapter.prepare("v1", published, None)
    assert adapter.set_traffic("v1", 100, None) == {"v1": 100}
    assert aws.alias() == {"version": published, "weights": {}}
    with pytest.raises(AdapterError, match=f"Version {published} of function web already belongs to release 'v1'"):
        adapter.prepare("v2", arn, "v1")
    with pytest.raises(InvalidTargetError, match="is a version of another function"):
        adapter.prepare("v2", arn.replace(":web:", ":other:"), "v1")


def test_lambda_rollback_of_a_first_release_removes_the_alias(aws, zips):
    target = aws.function()
    adapter = create_adapter(target, CREDENTIALS)
    adapter.prepare("v1", zips("v1"), None)
    adapter.set_traffic("v1", 100, None)

    assert adapter.rollback(None, "v1") == {}
    assert "live" not in [alias["Name"] for alias in aws.lambda_.list_aliases(FunctionName="web")["Aliases"]]


@pytest.mark.parametrize("weight", [101, -1, 0.5, "10", None])
def test_lambda_weight_outside_range_is_rejected_before_any_request(aws, zips, monkeypatch, weight):
    target = aws.function()
    adapter = create_adapter(target, CREDENTIALS)
    adapter.prepare("v1", zips("v1"), None)
    adapter.set_traffic("v1", 100, None)
    adapter.prepare("v2", zips("v2"), "v1")
    _refuse_requests(monkeypatch)

    with pytest.raises(InvalidTargetError, match="Weight"):
        adapter.set_traffic("v2", weight, "v1")

    monkeypatch.undo()
    assert adapter.describe().split == {"v1": 100}


LAMBDA = {"type": "aws_lambda", "region": REGION, "function_name": "web"}


@pytest.mark.parametrize(("change", "problem"), [
    ({"function_name": "arn:aws:lambda:eu-west-1:123456789012:function"}, "Setting 'function_name' must be"),
    ({"function_name": "web site"}, "Setting 'function_name' must be"),
    ({"function_name": "arn:aws:lambda:us-east-1:123456789012:function:web"}, "is in region 'us-east-1'"),
    ({"region": None}, "Setting 'region' must be an AWS region"),
    ({"alias": "123"}, "Setting 'alias' must be an alias name"),
    ({"alias": "release-v1"}, "Setting 'alias' must be an alias name"),
])
def test_lambda_invalid_settings_are_rejected_before_any_request(no_requests, change, problem):
    with pytest.raises(InvalidTargetError) as raised:
        create_adapter({**LAMBDA, **change}, CREDENTIALS)

    assert any(problem in item for item in raised.value.problems), raised.value.problems


@pytest.mark.parametrize("artifact", ["/releases/v2.tar.gz", "", "latest", "$LATEST"])
def test_lambda_artifact_that_is_no_zip_is_rejected_before_any_request(no_requests, artifact):
    adapter = create_adapter(LAMBDA, CREDENTIALS)

    with pytest.raises(InvalidTargetError, match="is not a Lambda release"):
        adapter.prepare("v2", artifact, "v1")


def test_lambda_unreachable_endpoint_gives_adapter_error_without_the_secret(zips):
    port = free_port()
    adapter = create_adapter({**LAMBDA, "endpoint_url": f"http://127.0.0.1:{port}"}, CREDENTIALS)

    with pytest.raises(AdapterError) as raised:
        adapter.prepare("v1", zips("v1"), None)

    message = str(raised.value)
    assert message.startswith(f"Cannot reach AWS (http://127.0.0.1:{port}) to list the aliases of function web")
    assert SECRET not in message


# -- through the engine -----------------------------------------------------------------------------


def _environment(project, target: dict, credentials: dict):
    from app.deployments import requests as deployment_requests

    environment = deployment_requests.ensure_environment(project, "production", target=target)
    deployment_requests.set_credentials(environment, credentials)
    return environment


def _deploy(environment, name: str, spec: dict | None = None):
    from app.deployments import requests as deployment_requests

    release = deployment_requests.create_release(environment.project, name, f"/releases/{name}.tar.gz",
                                                 commit_sha="a" * 40)
    return deployment_requests.create_deployment(environment, release, spec or {}, requested_by="alice")


def _promote(deployment):
    from sqlalchemy import select

    from app.deployments import requests as deployment_requests
    from app.extensions import db
    from app.models import User

    user = db.session.scalar(select(User).where(User.username == "bob"))
    if user is None:
        user = User(username="bob", is_admin=True)
        db.session.add(user)
        db.session.commit()
    deployment_requests.request_promote(deployment, user)


def test_engine_canary_on_alb_records_the_splits_moto_holds(aws, project, drive):
    from app.deployments.status import DeploymentStatus

    target = aws.alb()
    environment = _environment(project, target, CREDENTIALS)
    first = drive(_deploy(environment, "v1").id)
    assert first.status == DeploymentStatus.SUCCEEDED, first.status_reason
    assert aws.listener_weights(target) == {"web-blue": 0, "web-green": 100}

    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50},
                                                      {"pause": {}}]}}
    deployment = drive(_deploy(environment, "v2", spec).id)
    assert deployment.status == DeploymentStatus.PAUSED, deployment.status_reason
    assert deployment.split == {"v1": 90, "v2": 10}
    assert aws.listener_weights(target) == {"web-blue": 10, "web-green": 90}

    _promote(deployment)
    deployment = drive(deployment.id)
    assert deployment.status == DeploymentStatus.PAUSED, deployment.status_reason
    assert deployment.split == {"v1": 50, "v2": 50}
    assert aws.listener_weights(target) == {"web-blue": 50, "web-green": 50}

    _promote(deployment)
    deployment = drive(deployment.id)
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.status_reason
    splits = [event.split for event in deployment.events.filter_by(kind="traffic")]
    assert splits == [{"v1": 100}, {"v1": 90, "v2": 10}, {"v1": 50, "v2": 50}, {"v2": 100}]
    assert aws.listener_weights(target) == {"web-blue": 100, "web-green": 0}
    assert create_adapter(target, CREDENTIALS).describe().split == deployment.split == {"v2": 100}
    # A canary keeps the previous release installed for a quick rollback.
    assert aws.release_tags(target) == {"blue": "v2", "green": "v1"}


def test_engine_blue_green_on_alb_switches_and_removes_the_previous_release(aws, project, drive):
    from app.deployments.status import DeploymentStatus

    target = aws.alb()
    environment = _environment(project, target, CREDENTIALS)
    assert drive(_deploy(environment, "v1").id).status == DeploymentStatus.SUCCEEDED

    deployment = drive(_deploy(environment, "v2", {"strategy": {"type": "blueGreen", "keepPreviousFor": 0.1}}).id)

    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.status_reason
    assert [event.split for event in deployment.events.filter_by(kind="traffic")] == [{"v1": 100}, {"v2": 100}]
    assert aws.listener_weights(target) == {"web-blue": 100, "web-green": 0}
    assert aws.release_tags(target) == {"blue": "v2", "green": None}


def test_engine_canary_on_lambda_records_the_splits_moto_holds(aws, project, drive, zips):
    from app.deployments import requests as deployment_requests
    from app.deployments.status import DeploymentStatus

    target = aws.function()
    environment = _environment(project, target, CREDENTIALS)

    def deploy(name: str, spec: dict | None = None):
        release = deployment_requests.create_release(project, name, zips(name), commit_sha="a" * 40)
        return deployment_requests.create_deployment(environment, release, spec or {}, requested_by="alice")

    assert drive(deploy("v1").id).status == DeploymentStatus.SUCCEEDED
    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": 25}, {"pause": {}}]}}
    deployment = drive(deploy("v2", spec).id)
    assert deployment.split == {"v1": 75, "v2": 25}
    v2 = aws.lambda_.get_alias(FunctionName="web", Name="release-v2")["FunctionVersion"]
    assert aws.alias()["weights"] == {v2: 0.25}

    deployment_requests.request_abort(deployment, "Aborted by bob")
    deployment = drive(deployment.id)
    assert deployment.status == DeploymentStatus.ROLLED_BACK
    assert deployment.split == {"v1": 100}
    assert aws.alias()["weights"] == {}


def test_engine_unreachable_aws_fails_without_the_secret_and_live_keeps_serving(aws, project, drive):
    from app.deployments.status import DeploymentStatus

    target = aws.alb()
    environment = _environment(project, target, CREDENTIALS)
    assert drive(_deploy(environment, "v1").id).status == DeploymentStatus.SUCCEEDED
    from app.extensions import db

    environment.target = {**target, "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    db.session.commit()

    deployment = drive(_deploy(environment, "v2", {"strategy": {"type": "canary", "steps": [{"setWeight": 10}]}}).id)

    assert deployment.status == DeploymentStatus.FAILED
    assert "Cannot reach AWS" in deployment.status_reason
    assert "The live release 'v1' keeps serving" in deployment.status_reason
    assert all(SECRET not in (event.message or "") for event in deployment.events)
    assert aws.listener_weights(target) == {"web-blue": 0, "web-green": 100}
