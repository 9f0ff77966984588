"""Least privilege in deploy/waystream.yaml.

Every IAM statement (inline policies of AWS::IAM::Role, AWS::IAM::Policy and
AWS::IAM::ManagedPolicy, bucket and queue policies, the OpenSearch domain's AccessPolicies) is
read with cfn-lint's own decoder (so the short-form intrinsics parse), both branches of every
Fn::If included. A statement fails the test when an Action contains "*", or a Resource or a
Principal is "*" or ends in ":*", unless that exact value is in ALLOWED below with its reason.
AWS-managed policies attached to a role fail unless listed in ALLOWED_MANAGED.

Each exception must also be explained in docs/deploy.md (by its Sid), and an exception that no
longer occurs fails the test, so the list stays exactly what the template needs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.decode import decode_str

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "waystream.yaml"
DOCS = REPO / "docs" / "deploy.md"

# (resource logical id, statement Sid, field, value as written in the template) -> reason.
# Fn::Sub values are compared as their template string.
ALLOWED = {
    (
        "IngestRole", "OwnLogs", "Resource",
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${NamePrefix}-ingest:*",
    ): "Lambda names its log streams at run time (YYYY/MM/DD/[$LATEST]<id>); the wildcard is "
       "the streams of this one log group.",
    (
        "HostRole", "HostLogs", "Resource",
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/waystream/${NamePrefix}/host:*",
    ): "The CloudWatch agent names each log stream after its instance id, known only at run "
       "time; the wildcard is the streams of this one log group.",
    ("SearchDomain", "DashboardsFromCidr", "Principal", "*"):
        "Dashboards in a browser sends unsigned requests, so the principal cannot be named; the "
        "statement is limited by an aws:SourceIp condition to DashboardsAllowedCidr.",
}

# AWS-managed policies (their statements are AWS's, not in the template) -> reason.
ALLOWED_MANAGED = {
    ("EmrServiceRole", "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"):
        "The EMR service role's documented policy. It has Resource \"*\" statements (e.g. "
        "ec2:Describe*, which EC2 cannot scope) and limits its create/modify actions to "
        "resources tagged for-use-with-amazon-emr-managed-policies=true.",
}

POLICY_PROPERTIES = {
    "AWS::IAM::Role": ["Policies"],
    "AWS::IAM::Policy": ["PolicyDocument"],
    "AWS::IAM::ManagedPolicy": ["PolicyDocument"],
    "AWS::S3::BucketPolicy": ["PolicyDocument"],
    "AWS::SQS::QueuePolicy": ["PolicyDocument"],
    "AWS::OpenSearchService::Domain": ["AccessPolicies"],
}


def load_template() -> dict:
    template, matches = decode_str(TEMPLATE.read_text())
    assert not matches, matches
    return template


TEMPLATE_DICT = load_template()
RESOURCES = TEMPLATE_DICT["Resources"]


def branches(value):
    """The values `value` can take: both branches of an Fn::If, nothing for AWS::NoValue."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "Fn::If":
            for branch in inner[1:]:
                yield from branches(branch)
            return
        if key == "Ref" and inner == "AWS::NoValue":
            return
    yield value


def scalars(value):
    """The values of an Action / Resource / Principal entry, as comparable strings."""
    for value in branches(value):
        if isinstance(value, list):
            for item in value:
                yield from scalars(item)
        elif isinstance(value, str):
            yield str(value)
        elif isinstance(value, dict) and len(value) == 1:
            (key, inner), = value.items()
            if key == "Fn::Sub":
                yield str(inner[0] if isinstance(inner, list) else inner)
            elif key == "Fn::GetAtt":
                target, attribute = inner if isinstance(inner, list) else str(inner).split(".", 1)
                text = f"<GetAtt {target}.{attribute}>"
                # A log group's Arn attribute ends in ":*" (it covers the group's streams).
                if RESOURCES.get(target, {}).get("Type") == "AWS::Logs::LogGroup" and attribute == "Arn":
                    text += ":*"
                yield text
            elif key == "Ref":
                yield f"<Ref {inner}>"
            elif key == "Fn::Join":
                separator, parts = inner
                yield separator.join(next(scalars(p), "") for p in parts)
            else:
                yield f"<{key}>"
        else:
            yield f"<{type(value).__name__}>"


def documents(resource: dict):
    """The policy documents held by a resource's properties."""
    properties = resource.get("Properties", {})
    for name in POLICY_PROPERTIES.get(resource["Type"], []):
        value = properties.get(name)
        if value is None:
            continue
        if name == "Policies":
            for policy in value:
                for policy in branches(policy):
                    yield policy["PolicyDocument"]
        else:
            yield value


def statements():
    """(logical id, statement) for every statement the template's policies can contain."""
    for logical_id, resource in RESOURCES.items():
        for document in documents(resource):
            for entry in document["Statement"]:
                for statement in branches(entry):
                    yield logical_id, statement


def principals(statement) -> list[str]:
    principal = statement.get("Principal")
    if principal is None:
        return []
    if isinstance(principal, str):
        return [principal]
    return [value for values in principal.values() for value in scalars(values)]


def wildcard(field: str, value: str) -> bool:
    if field == "Action":
        return "*" in value
    return value == "*" or value.endswith(":*")


def findings():
    """(logical id, Sid, field, value) of every wildcard in the template's statements."""
    found = []
    for logical_id, statement in statements():
        sid = statement.get("Sid", "<no Sid>")
        for field in ("Action", "NotAction", "Resource", "NotResource"):
            for value in scalars(statement.get(field, [])):
                if wildcard(field.removeprefix("Not"), value):
                    found.append((logical_id, sid, field, value))
        for value in principals(statement):
            if wildcard("Principal", value):
                found.append((logical_id, sid, "Principal", value))
    return found


def test_statements_are_found():
    # The walk must see the policies at all, or every other test passes vacuously.
    ids = {logical_id for logical_id, _ in statements()}
    assert {"IngestRole", "HostRole", "FirehoseRole", "EmrServiceRole", "SearchDomain"} <= ids


def test_no_wildcards_outside_the_allow_list():
    unexpected = [f for f in findings() if f not in ALLOWED]
    assert not unexpected, "wildcards not in ALLOWED:\n" + "\n".join(map(str, unexpected))


def test_allow_list_is_not_stale():
    stale = set(ALLOWED) - set(findings())
    assert not stale, f"ALLOWED entries the template no longer has: {stale}"


def test_every_statement_has_a_sid():
    # The allow-list (and docs/deploy.md) name statements by Sid.
    missing = [logical_id for logical_id, st in statements() if "Sid" not in st]
    assert not missing, missing


def test_managed_policies_are_allowed():
    attached = set()
    for logical_id, resource in RESOURCES.items():
        for arn in resource.get("Properties", {}).get("ManagedPolicyArns", []):
            for value in scalars(arn):
                attached.add((logical_id, value))
    assert attached == set(ALLOWED_MANAGED), attached ^ set(ALLOWED_MANAGED)


def test_dashboards_statement_is_limited_by_source_ip():
    (statement,) = [st for lid, st in statements() if st.get("Sid") == "DashboardsFromCidr"]
    assert statement["Condition"]["IpAddress"]["aws:SourceIp"] == {"Ref": "DashboardsAllowedCidr"}


def test_exceptions_are_documented():
    docs = DOCS.read_text()
    for (_, sid, _, _) in ALLOWED:
        assert sid in docs, f"docs/deploy.md does not explain the IAM exception {sid}"
    assert "AmazonEMRServicePolicy_v2" in docs


def role_actions(logical_id: str) -> set[str]:
    return {
        action
        for lid, statement in statements()
        if lid == logical_id
        for action in scalars(statement.get("Action", []))
    }


@pytest.mark.parametrize(
    "role, expected",
    [
        ("HostRole", {
            "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary", "kinesis:ListShards",
            "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
            "dynamodb:Scan", "dynamodb:Query", "dynamodb:DescribeTable",
            "firehose:PutRecordBatch",
            "es:ESHttpGet", "es:ESHttpPost", "es:ESHttpPut",
            "s3:PutObject", "s3:GetObject",
            "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
        }),
        ("IngestRole", {
            "s3:GetObject", "kinesis:PutRecords", "kinesis:PutRecord",
            "kinesis:DescribeStreamSummary", "sqs:SendMessage",
            "logs:CreateLogStream", "logs:PutLogEvents",
        }),
        ("FirehoseRole", {
            "es:DescribeDomain", "es:DescribeDomains", "es:DescribeDomainConfig",
            "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpGet",
            "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
            "s3:ListBucketMultipartUploads", "s3:PutObject", "logs:PutLogEvents",
        }),
        ("EmrServiceRole", {"iam:PassRole"}),
    ],
)
def test_role_actions(role, expected):
    # Exactly these: a new action is a deliberate change to this list.
    assert role_actions(role) == expected


def test_delivery_permissions_follow_the_mode():
    # The host may write to Firehose only in firehose mode and to OpenSearch only in direct mode.
    host = RESOURCES["HostRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    conditional = {}
    for entry in host:
        if isinstance(entry, dict) and "Fn::If" in entry:
            condition, then, _ = entry["Fn::If"]
            conditional[then["Sid"]] = condition
    assert conditional == {"DeliverToFirehose": "IsFirehose", "DeliverToOpenSearch": "IsDirect"}


def test_core_nodes_must_be_x86_64():
    """The host tarball is an x86_64 binary: the core instance type rejects Graviton types."""
    import re

    template = decode_str(TEMPLATE.read_text())[0]
    pattern = re.compile(template["Parameters"]["CoreInstanceType"]["AllowedPattern"])
    for x86 in ["m7i.large", "m7a.xlarge", "c5n.2xlarge", "r5dn.large", "m7i-flex.large", "m5.large"]:
        assert pattern.fullmatch(x86), x86
    for graviton in ["m7g.large", "c6gn.xlarge", "m6gd.large", "t4g.small", "r8g.large"]:
        assert not pattern.fullmatch(graviton), graviton


def test_only_the_writing_role_may_use_the_domain():
    """Firehose's role writes to the domain with delivery = firehose, the hosts' with direct."""
    template = decode_str(TEMPLATE.read_text())[0]
    statements = template["Resources"]["SearchDomain"]["Properties"]["AccessPolicies"]["Statement"]
    pipeline = next(s for s in statements if isinstance(s, dict) and s.get("Sid") == "PipelineRoles")
    principals = pipeline["Principal"]["AWS"]
    assert principals == [
        {"Fn::If": ["IsFirehose", {"Fn::GetAtt": ["FirehoseRole", "Arn"]}, {"Fn::GetAtt": ["HostRole", "Arn"]}]}
    ], principals
