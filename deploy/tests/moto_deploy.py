#!/usr/bin/env python3
"""Deploy deploy/waystream.yaml into a running moto server's CloudFormation.

    moto_server -H 127.0.0.1 -p 4566 &
    python deploy/tests/moto_deploy.py --endpoint http://127.0.0.1:4566 [--delivery direct]

Prints the stack outputs as one JSON object on stdout; everything else (what was dropped, the
stack's resources, errors) goes to stderr. Exit status 0 only for CREATE_COMPLETE.

moto's CloudFormation (checked with moto 5.2.5) does not know every resource type the template
uses. An unknown type is not skipped quietly: a Fn::GetAtt to it fails CreateStack with
"Template error: instance of Fn::GetAtt references undefined resource ...", and an output that
reads one crashes the server's CreateStack handler (HTTP 500). So this script deploys a *moto
variant* of the template: the resources of unsupported types are removed, every Ref / Fn::GetAtt /
${...} to them inside the remaining resources is replaced by a placeholder string, DependsOn
entries naming them are removed, and outputs that read them are removed. The dropped resources
and outputs are listed on stderr. They are checked instead by cfn-lint's schema validation
(deploy/tests/test_lint.py) and the IAM test (deploy/tests/test_iam.py); see docs/deploy.md.

Before creating the stack the script makes what the template expects to exist already: the
artifacts bucket with a stand-in ingest-lambda.zip (moto's Lambda reads the code object at
creation) and a VPC + subnet for the EMR cluster (tagged as AmazonEMRServicePolicy_v2 wants).

Dependencies: boto3 and cfn-lint (for its YAML decoder, which reads the short-form intrinsics).
If moto itself is importable (the same virtualenv as moto_server), the set of unsupported types is
read from moto's own registry; otherwise the list below, checked against moto 5.2.5, is used.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import sys
import time
import zipfile
from pathlib import Path

import boto3
from cfnlint.decode import decode_str

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "waystream.yaml"

# Resource types of deploy/waystream.yaml that moto 5.2.5's CloudFormation has no model for
# (used when moto is not importable here).
UNSUPPORTED_IN_MOTO_5_2_5 = {
    "AWS::OpenSearchService::Domain",
    "AWS::KinesisFirehose::DeliveryStream",
    "AWS::Logs::LogStream",
}

PLACEHOLDER_ACCOUNT = "123456789012"


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def unsupported_types(template_types: set[str]) -> tuple[set[str], str]:
    """The template's resource types moto's CloudFormation cannot create, and how we know."""
    try:
        from moto.cloudformation.parsing import get_model_map  # type: ignore
    except Exception:  # noqa: BLE001 - moto absent or a different layout: use the checked list
        return template_types & UNSUPPORTED_IN_MOTO_5_2_5, "list checked against moto 5.2.5"
    import moto  # type: ignore

    supported = set(get_model_map())
    return template_types - supported, f"moto {moto.__version__}'s own registry"


def placeholder(logical_id: str, attribute: str | None, region: str) -> str:
    """A stand-in for a Ref or Fn::GetAtt of a dropped resource (ARN-shaped for ...Arn)."""
    if attribute and attribute.endswith("Arn"):
        return f"arn:aws:moto-dropped:{region}:{PLACEHOLDER_ACCOUNT}:{logical_id}"
    suffix = f"-{attribute}" if attribute else ""
    return f"moto-dropped-{logical_id}{suffix}".lower().replace(".", "-")


def references(value: object, names: set[str]) -> bool:
    """Whether `value` (a template fragment) refers to any resource in `names`."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str) and inner in names:
                return True
            if key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                if target in names:
                    return True
            if key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                if any(t.split(".")[0] in names for t in re.findall(r"\$\{([^!}][^}]*)\}", text)):
                    return True
            if references(inner, names):
                return True
        return False
    if isinstance(value, list):
        return any(references(v, names) for v in value)
    return False


def replace_refs(value: object, names: set[str], region: str) -> object:
    """`value` with every Ref / Fn::GetAtt / ${...} to a resource in `names` made a placeholder."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key, inner), = value.items()
            if key == "Ref" and isinstance(inner, str) and inner in names:
                return placeholder(inner, None, region)
            if key == "Fn::GetAtt":
                parts = inner if isinstance(inner, list) else str(inner).split(".", 1)
                if parts[0] in names:
                    return placeholder(parts[0], str(parts[1]), region)
            if key == "Fn::Sub":
                text, variables = (inner[0], inner[1]) if isinstance(inner, list) else (inner, None)

                def sub(match: re.Match[str]) -> str:
                    target, _, attribute = match.group(1).partition(".")
                    if target in names:
                        return placeholder(target, attribute or None, region)
                    return match.group(0)

                text = re.sub(r"\$\{([^!}][^}]*)\}", sub, text)
                if variables is not None:
                    return {"Fn::Sub": [text, replace_refs(variables, names, region)]}
                return {"Fn::Sub": text}
        return {k: replace_refs(v, names, region) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_refs(v, names, region) for v in value]
    return value


def plain(value: object) -> object:
    """cfn-lint's decoded nodes as plain dicts, lists and strings (for json.dumps)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def moto_variant(template: dict, region: str) -> tuple[dict, list[tuple[str, str]], list[str], str]:
    """The template without the resource types moto cannot create, and what was dropped."""
    resources = template["Resources"]
    types = {r["Type"] for r in resources.values()}
    unsupported, source = unsupported_types(types)
    dropped = sorted((name, r["Type"]) for name, r in resources.items() if r["Type"] in unsupported)
    names = {name for name, _ in dropped}

    variant = dict(template)
    kept = {}
    for name, resource in resources.items():
        if name in names:
            continue
        resource = dict(resource)
        depends = resource.get("DependsOn")
        if depends is not None:
            depends = [depends] if isinstance(depends, str) else list(depends)
            depends = [d for d in depends if d not in names]
            if depends:
                resource["DependsOn"] = depends
            else:
                del resource["DependsOn"]
        kept[name] = replace_refs(resource, names, region)
    variant["Resources"] = kept

    dropped_outputs = []
    outputs = {}
    for key, output in template.get("Outputs", {}).items():
        if references(output, names):
            dropped_outputs.append(key)
        else:
            outputs[key] = output
    variant["Outputs"] = outputs
    return variant, dropped, dropped_outputs, source


def stand_in_lambda_zip() -> bytes:
    """An ingest-lambda.zip shaped like the real one (a `bootstrap` at the root); never run."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("bootstrap", "#!/bin/sh\necho 'stand-in for moto'\n")
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:4566")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--stack-name", default="waystream-moto")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--delivery", choices=["firehose", "direct"], default="firehose")
    parser.add_argument("--artifacts-bucket", default="waystream-artifacts-moto")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="extra stack parameter (repeatable)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the stack")
    parser.add_argument("--write-variant", type=Path, help="also write the moto variant (JSON) here")
    args = parser.parse_args()

    template, matches = decode_str(args.template.read_text())
    if matches:
        for match in matches:
            log(f"template does not parse: {match}")
        return 2
    template = plain(template)
    variant, dropped, dropped_outputs, source = moto_variant(template, args.region)

    log(f"unsupported resource types from {source}")
    if dropped:
        log("dropped from the moto variant (moto's CloudFormation cannot create these types):")
        for name, kind in dropped:
            log(f"  {name:32} {kind}")
        log(f"dropped outputs (they read dropped resources): {', '.join(dropped_outputs) or 'none'}")
    else:
        log("nothing dropped: moto supports every resource type of the template")
    if args.write_variant:
        args.write_variant.write_text(json.dumps(variant, indent=1))

    session = boto3.session.Session(
        aws_access_key_id="moto", aws_secret_access_key="moto", region_name=args.region
    )
    client = lambda service: session.client(service, endpoint_url=args.endpoint)  # noqa: E731
    s3, ec2, cloudformation = client("s3"), client("ec2"), client("cloudformation")

    # What the template expects to exist already.
    prefix = "waystream/"
    create = {} if args.region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": args.region}
    }
    try:
        s3.create_bucket(Bucket=args.artifacts_bucket, **create)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket=args.artifacts_bucket, Key=f"{prefix}ingest-lambda.zip", Body=stand_in_lambda_zip())
    emr_tag = [{"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}]
    vpc = ec2.create_vpc(
        CidrBlock="10.42.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": emr_tag}],
    )["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock="10.42.1.0/24",
        TagSpecifications=[{"ResourceType": "subnet", "Tags": emr_tag}],
    )["Subnet"]["SubnetId"]

    parameters = {
        "ArtifactsBucket": args.artifacts_bucket,
        "ArtifactsPrefix": prefix,
        "Ec2SubnetId": subnet,
        "Delivery": args.delivery,
        "DashboardsAllowedCidr": "127.0.0.1/32",
    }
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--param wants KEY=VALUE, got {item!r}")
        parameters[key] = value

    cloudformation.create_stack(
        StackName=args.stack_name,
        TemplateBody=json.dumps(variant),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    deadline = time.monotonic() + args.timeout
    while True:
        stack = cloudformation.describe_stacks(StackName=args.stack_name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    resources = cloudformation.list_stack_resources(StackName=args.stack_name)["StackResourceSummaries"]
    created = [r for r in resources if r["LogicalResourceId"]]
    log(f"stack {args.stack_name}: {stack['StackStatus']} ({len(created)} resources)")
    # (moto also lists the resources a false Condition left out, with empty ids: skip those.)
    for resource in sorted(resources, key=lambda r: r["LogicalResourceId"]):
        if not resource["LogicalResourceId"]:
            continue
        log(
            f"  {resource['LogicalResourceId']:32} {resource['ResourceType']:40} "
            f"{resource['ResourceStatus']}"
        )
    if stack["StackStatus"] != "CREATE_COMPLETE":
        log(f"stack did not complete: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
        for event in cloudformation.describe_stack_events(StackName=args.stack_name)["StackEvents"]:
            if "FAILED" in event["ResourceStatus"]:
                log(f"  {event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}")
        return 1

    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    failures = verify(client, parameters, outputs, args.region)
    print(json.dumps(outputs, indent=2, sort_keys=True))
    return 1 if failures else 0


def verify(client, parameters: dict, outputs: dict, region: str) -> int:
    """Compare what moto holds with what the template asks, for the properties moto keeps.

    moto accepts but does not keep everything (see docs/deploy.md): S3 notifications, public
    access blocks and lifecycle rules, the Lambda's architecture, dead-letter and logging config,
    Kinesis stream mode and encryption, EMR instance groups and bootstrap actions, managed policy
    attachments.
    Those are not checked here. Returns the number of failed checks.
    """
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: object) -> None:
        checks.append((name, bool(ok), str(detail)))

    stream = client("kinesis").describe_stream_summary(StreamName=outputs["StreamName"])[
        "StreamDescriptionSummary"
    ]
    if parameters.get("StreamMode", "PROVISIONED") == "PROVISIONED":
        mode = stream["StreamModeDetails"]["StreamMode"]
        check("kinesis stream mode", mode == "PROVISIONED", mode)
        shards = stream["OpenShardCount"]
        check("kinesis shard count", shards == int(parameters.get("ShardCount", 2)), shards)
    else:
        # moto's CloudFormation reads only ShardCount (default 1), not StreamModeDetails.
        log("  (ON_DEMAND not checkable: moto's CloudFormation ignores StreamModeDetails)")

    table = client("dynamodb").describe_table(TableName=outputs["LeaseTableName"])["Table"]
    check(
        "lease table key",
        table["KeySchema"] == [{"AttributeName": "leaseKey", "KeyType": "HASH"}]
        and table["AttributeDefinitions"] == [{"AttributeName": "leaseKey", "AttributeType": "S"}],
        table["KeySchema"],
    )
    billing = table.get("BillingModeSummary", {}).get("BillingMode")
    check("lease table billing", billing == "PAY_PER_REQUEST", billing)

    lam = client("lambda")
    function = lam.get_function(FunctionName=outputs["IngestFunctionName"])["Configuration"]
    check("lambda runtime", function["Runtime"] == "provided.al2023", function["Runtime"])
    check("lambda handler", function["Handler"] == "bootstrap", function["Handler"])
    env = function.get("Environment", {}).get("Variables", {})
    check("lambda WAYSTREAM_STREAM", env.get("WAYSTREAM_STREAM") == outputs["StreamName"], env)

    upload_arn = f"arn:aws:s3:::{outputs['UploadBucketName']}"
    policy = json.loads(lam.get_policy(FunctionName=outputs["IngestFunctionName"])["Policy"])
    statement = policy["Statement"][0]
    source_arn = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
    check("lambda permission source = upload bucket", source_arn == upload_arn, source_arn)

    iam = client("iam")

    def role_resources(role_arn_or_prefix: str) -> list[str]:
        found = []
        for role in iam.list_roles()["Roles"]:
            if role["Arn"] == role_arn_or_prefix or role["RoleName"].startswith(role_arn_or_prefix):
                for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)[
                        "PolicyDocument"
                    ]
                    if isinstance(document, str):
                        # moto keeps a CloudFormation-made inline policy as the Python repr
                        # of a dict, not as JSON.
                        try:
                            document = json.loads(document)
                        except json.JSONDecodeError:
                            document = ast.literal_eval(document)
                    # moto leaves an Fn::If branch of AWS::NoValue as a null statement.
                    for st in filter(None, document["Statement"]):
                        resources = st.get("Resource", [])
                        found += [resources] if isinstance(resources, str) else resources
        return found

    host = role_resources(outputs["HostRoleArn"])
    check("host role reads the stream", outputs["StreamArn"] in host, outputs["StreamArn"])
    table_arn = table["TableArn"]
    check("host role uses the lease table", table_arn in host, table_arn)
    dead = f"arn:aws:s3:::{outputs['DeadLetterBucketName']}/dead-letters/*"
    check("host role writes dead letters", dead in host, dead)
    stack_prefix = outputs["HostRoleArn"].split("/")[-1].split("-HostRole-")[0]
    ingest = role_resources(f"{stack_prefix}-IngestRole-")
    # The Lambda's role names the upload bucket by a constructed ARN (a Ref would be a cycle):
    # it must be the bucket the stack actually made.
    check(
        "ingest role reads the upload bucket (constructed ARN)",
        any(r.startswith(upload_arn + "/") for r in ingest),
        [r for r in ingest if r.startswith("arn:aws:s3")],
    )

    emr = client("emr")
    cluster = emr.describe_cluster(ClusterId=outputs["EmrClusterId"])["Cluster"]
    check("emr release", cluster["ReleaseLabel"] == parameters.get("EmrReleaseLabel", cluster["ReleaseLabel"])
          and cluster["ReleaseLabel"].startswith("emr-7."), cluster["ReleaseLabel"])
    subnet = cluster["Ec2InstanceAttributes"].get("Ec2SubnetId")
    check("emr subnet", subnet == parameters["Ec2SubnetId"], subnet)
    log_uri = cluster.get("LogUri")
    check("emr log uri", log_uri == f"s3://{outputs['EmrLogBucketName']}/emr/", log_uri)
    tags = {t["Key"]: t["Value"] for t in cluster.get("Tags", [])}
    check("emr v2-policy tag", tags.get("for-use-with-amazon-emr-managed-policies") == "true", tags)

    failed = 0
    log("checks against what moto holds:")
    for name, ok, detail in checks:
        failed += not ok
        log(f"  {'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
    return failed


if __name__ == "__main__":
    sys.exit(main())
