"""The local world is template.yaml: every table, queue, key, function setting and SQS event
source setting of the transformed template is in the sandbox with the template's value, and
a changed template value shows up in a world deployed from it."""

from __future__ import annotations

import json

import pytest

from sandbox import stack as local_stack
from sandbox.world import LOCAL_OVERRIDES, LOCAL_SETTINGS

TEMPLATE = local_stack.transformed_template()
RESOURCES = TEMPLATE["Resources"]


def of_type(kind: str, template: dict = TEMPLATE) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def resolver(sandbox) -> local_stack.Resolver:
    """The template's values for this sandbox's stack (its parameters, its resources)."""
    deployed = sandbox.stack

    def attribute(logical: str, name: str) -> str:
        if name == "Arn" and RESOURCES[logical]["Type"] == "AWS::SQS::Queue":
            return queue_attributes(sandbox, deployed.ref(logical))["QueueArn"]
        if name == "Arn" and RESOURCES[logical]["Type"] == "AWS::KMS::Key":
            return sandbox.aws.client("kms").describe_key(KeyId=deployed.ref(logical))["KeyMetadata"]["Arn"]
        raise KeyError((logical, name))

    return local_stack.Resolver(TEMPLATE, deployed.parameters, ref=deployed.ref, attribute=attribute)


def queue_attributes(sandbox, url: str) -> dict[str, str]:
    return sandbox.aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_every_table_has_the_templates_keys_indexes_billing_and_ttl(sandbox):
    dynamodb = sandbox.aws.client("dynamodb")
    tables = of_type("AWS::DynamoDB::Table")
    assert len(tables) >= 4
    for logical, resource in tables.items():
        spec = resource["Properties"]
        name = sandbox.stack.ref(logical)
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == spec["KeySchema"], logical
        assert sorted(table["AttributeDefinitions"], key=str) == sorted(spec["AttributeDefinitions"], key=str)
        assert table["BillingModeSummary"]["BillingMode"] == spec["BillingMode"]
        indexes = {i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])}
        assert indexes == {i["IndexName"]: i["KeySchema"] for i in spec.get("GlobalSecondaryIndexes", [])}
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in spec:
            assert ttl["TimeToLiveStatus"] == "ENABLED", logical
            assert ttl["AttributeName"] == spec["TimeToLiveSpecification"]["AttributeName"]
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED", logical


def test_every_queue_has_the_templates_attributes_and_redrive(sandbox):
    template = resolver(sandbox)
    event_queues = {source.queue for source in sandbox.stack.event_sources}
    queues = of_type("AWS::SQS::Queue")
    assert len(queues) >= 6
    for logical, resource in queues.items():
        spec = template.resolve(resource["Properties"])
        found = queue_attributes(sandbox, sandbox.stack.ref(logical))
        assert found["QueueArn"].endswith(":" + spec["QueueName"])
        for key in ("MessageRetentionPeriod", "SqsManagedSseEnabled", "FifoQueue", "DelaySeconds"):
            if key in spec:
                assert found[key].lower() == str(spec[key]).lower(), (logical, key)
        if logical in event_queues:  # the one declared local override: see Sandbox(visibility_timeout=...)
            assert found["VisibilityTimeout"] == "1"
        elif "VisibilityTimeout" in spec:
            assert found["VisibilityTimeout"] == str(spec["VisibilityTimeout"])
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in local_stack.NOT_LOCAL["AWS::SQS::Queue"]:
                continue  # named there, with why
            if key in spec:
                policy = json.loads(found[key])
                assert {k: str(v) for k, v in policy.items()} == {k: str(v) for k, v in spec[key].items()}, logical
            else:
                assert key not in found, logical


def test_the_token_journal_key_is_the_templates(sandbox):
    kms = sandbox.aws.client("kms")
    for logical, resource in of_type("AWS::KMS::Key").items():
        key = kms.describe_key(KeyId=sandbox.stack.ref(logical))["KeyMetadata"]
        assert key["Description"] == resource["Properties"]["Description"]
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] == bool(
            resource["Properties"].get("EnableKeyRotation")
        )
    assert sandbox.environment()["JOURNAL_KMS_KEY_ID"] == resolver(sandbox).resolve(
        {"Fn::GetAtt": ["TokenJournalKey", "Arn"]}
    )


def test_every_function_setting_is_the_templates_value(sandbox):
    template = resolver(sandbox)
    environment = sandbox.environment()
    functions = of_type("AWS::Lambda::Function")
    assert len(functions) == 3
    for logical, resource in functions.items():
        variables = template.resolve(resource["Properties"]["Environment"]["Variables"])
        for name, value in variables.items():
            expected = LOCAL_OVERRIDES.get(name, str(value))
            if name == "POWERTOOLS_LOG_LEVEL":
                continue  # the caller's log level (make run: CRITICAL)
            assert environment[name] == expected, (logical, name)
    # Local additions never shadow a template setting; the overrides are few and named.
    assert not set(LOCAL_SETTINGS) & set(template.resolve(_all_variables()))
    assert set(LOCAL_OVERRIDES) <= set(template.resolve(_all_variables()))
    # The simulators are reached through the template's own parameters.
    assert environment["PLEO_API_BASE_URL"] == sandbox.pleo.base_url
    assert environment["READINESS_SPREAD_SECONDS"] == "0"  # parameter ReadinessSpreadSeconds


def _all_variables() -> dict:
    merged: dict = {}
    for resource in of_type("AWS::Lambda::Function").values():
        merged.update(resource["Properties"]["Environment"]["Variables"])
    return merged


def test_the_pollers_are_the_templates_event_source_mappings(sandbox):
    mappings = of_type("AWS::Lambda::EventSourceMapping")
    pollers = {p.function.logical_id: p for p in (sandbox.poller(), sandbox.readiness_poller())}
    assert {m["Properties"]["FunctionName"]["Ref"] for m in mappings.values()} == set(pollers)
    for mapping in mappings.values():
        spec = mapping["Properties"]
        poller = pollers[spec["FunctionName"]["Ref"]]
        assert poller.source.queue == spec["EventSourceArn"]["Fn::GetAtt"][0]
        assert poller.source.batch_size == spec["BatchSize"]
        assert poller.source.batching_window_seconds == spec.get("MaximumBatchingWindowInSeconds", 0)
        assert poller.source.report_batch_item_failures == (
            "ReportBatchItemFailures" in spec.get("FunctionResponseTypes", [])
        )
        assert poller.source.maximum_concurrency == spec["ScalingConfig"]["MaximumConcurrency"]
        function = RESOURCES[spec["FunctionName"]["Ref"]]["Properties"]
        assert (
            poller.function.timeout_seconds
            == TEMPLATE["Mappings"]["Timeouts"][function["Timeout"]["Fn::FindInMap"][1]]["FunctionSeconds"]
        )


def test_the_local_stack_has_the_templates_outputs(sandbox):
    outputs = local_stack.local_stack_outputs(sandbox.aws.client)
    assert set(outputs) == set(TEMPLATE["Outputs"])
    environment = sandbox.environment()
    assert outputs["CompanyConfigTableName"] == environment["COMPANY_CONFIG_TABLE"]
    assert outputs["ClaimedJobsQueueUrl"] == environment["CLAIMED_JOBS_QUEUE_URL"]
    assert outputs["ReadinessDlqUrl"] == environment["READINESS_DLQ_URL"]
    # What the monitoring application provides, through GetAtt MonitoringApp.Outputs.<key>.
    monitoring = sandbox.stack.applications["MonitoringApp"]
    for key in ("AlarmTopicArn", "DashboardUrl", "AuthFailureCompaniesRuleName"):
        assert outputs[key] == monitoring.outputs[key], key


def test_the_monitoring_application_watches_the_local_worlds_resources(sandbox):
    """The alarms are not in the local world (monitoring.yaml is a nested application that
    is only named locally), but what the parent gives it is: every parameter resolves
    against the deployed local stack, and it names the very queues, tables, functions and
    log groups the sandbox runs, with the template's Mappings values."""
    stack = sandbox.stack
    monitoring = stack.applications["MonitoringApp"]
    declared = monitoring.template["Parameters"]
    assert set(monitoring.parameters) == set(declared)  # every parameter is given; none has a default
    assert not [name for name, spec in declared.items() if "Default" in spec]
    for prefix, queue in (
        ("ClaimedJobs", "ClaimedJobsQueue"),
        ("ClaimedJobsDlq", "ClaimedJobsDeadLetterQueue"),
        ("ReadyJobsDlq", "ReadyJobsDeadLetterQueue"),
        ("Readiness", "ReadinessQueue"),
        ("ReadinessDlq", "ReadinessDeadLetterQueue"),
    ):
        arn = queue_attributes(sandbox, stack.ref(queue))["QueueArn"]
        name = monitoring.parameters.get(f"{prefix}Name", monitoring.parameters.get(f"{prefix}QueueName"))
        assert name == arn.rsplit(":", 1)[1], prefix
        assert monitoring.parameters.get(f"{prefix}Arn", arn) == arn, prefix
        assert monitoring.parameters.get(f"{prefix}Url", stack.ref(queue)) == stack.ref(queue), prefix
    assert monitoring.parameters["CredentialLockTableName"] == stack.ref("CredentialLockTable")
    for function in ("PreflightFunction", "ReadinessFunction", "ReadinessSweepFunction"):
        assert monitoring.parameters[f"{function}Name"] == stack.functions[function].name
    outputs = stack.outputs
    assert monitoring.parameters["PreflightLogGroupName"] == outputs["PreflightLogGroupName"]
    assert monitoring.parameters["ReadinessLogGroupName"] == outputs["ReadinessLogGroupName"]
    assert monitoring.parameters["ReadinessSweepLogGroupName"] == outputs["ReadinessSweepLogGroupName"]
    assert monitoring.parameters["ServiceStackName"] == stack.name
    assert monitoring.parameters["AlarmEmail"] == stack.parameters["AlarmEmail"]
    # Thresholds: the same values the functions and queues are given (Mappings).
    preflight, readiness = stack.functions["PreflightFunction"], stack.functions["ReadinessFunction"]
    assert monitoring.parameters["ClaimedJobsMaxReceiveCount"] == preflight.environment["MAX_RECEIVE_COUNT"]
    assert monitoring.parameters["ReadinessMaxReceiveCount"] == readiness.environment["MAX_RECEIVE_COUNT"]
    assert monitoring.parameters["PreflightTimeoutSeconds"] == str(preflight.timeout_seconds)
    assert monitoring.parameters["ReadinessTimeoutSeconds"] == str(readiness.timeout_seconds)
    # A stack parameter (samconfig.toml's parameter_overrides, e.g. AlarmEmail) reaches it.
    deployed = local_stack.deploy(sandbox.aws.client, parameters={"AlarmEmail": "ops@example.org"}, name="alarm-email")
    assert deployed.applications["MonitoringApp"].parameters["AlarmEmail"] == "ops@example.org"
    # A parameter the nested template does not declare, or one it needs and is not given, is refused.
    for change, says in (
        (lambda p: p.update(NotAParameter="x"), "does not declare"),
        (lambda p: p.pop("ReadinessDlqArn"), "not given"),
    ):
        document = local_stack.load_template()
        change(document["Resources"]["MonitoringApp"]["Properties"]["Parameters"])
        with pytest.raises(ValueError, match=says):
            local_stack.deploy(sandbox.aws.client, template=local_stack.transform(document), name="nested-check")


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        (
            lambda t: t["Resources"]["PreflightFunction"]["Properties"]["Events"]["ClaimedJobs"]["Properties"].update(
                BatchSize=7, MaximumBatchingWindowInSeconds=2
            ),
            lambda s, c: (
                (
                    s.event_source("PreflightFunction").batch_size,
                    s.event_source("PreflightFunction").batching_window_seconds,
                )
                == (7, 2)
            ),
        ),
        (
            lambda t: t["Mappings"]["Redrive"]["ClaimedJobs"].update(MaxReceiveCount=3),
            lambda s, c: (
                json.loads(queue_attributes_of(c, s.ref("ClaimedJobsQueue"))["RedrivePolicy"])["maxReceiveCount"] == 3
                and s.functions["PreflightFunction"].environment["MAX_RECEIVE_COUNT"] == "3"
            ),
        ),
        (
            lambda t: t["Resources"]["JobDecisionsTable"]["Properties"]["TimeToLiveSpecification"].update(
                AttributeName="expiresLater"
            ),
            lambda s, c: (
                c("dynamodb").describe_time_to_live(TableName=s.ref("JobDecisionsTable"))["TimeToLiveDescription"][
                    "AttributeName"
                ]
                == "expiresLater"
            ),
        ),
        (
            lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(POWERTOOLS_SERVICE_NAME="renamed"),
            lambda s, c: s.environment()["POWERTOOLS_SERVICE_NAME"] == "renamed",
        ),
        (  # reaches the queue, the function and the nested monitoring application alike
            lambda t: t["Mappings"]["Redrive"]["Readiness"].update(MaxReceiveCount=4),
            lambda s, c: (
                json.loads(queue_attributes_of(c, s.ref("ReadinessQueue"))["RedrivePolicy"])["maxReceiveCount"] == 4
                and s.functions["ReadinessFunction"].environment["MAX_RECEIVE_COUNT"] == "4"
                and s.applications["MonitoringApp"].parameters["ReadinessMaxReceiveCount"] == "4"
            ),
        ),
        (
            lambda t: t["Mappings"]["Timeouts"]["Preflight"].update(DurationAlarmMilliseconds=20000),
            lambda s, c: s.applications["MonitoringApp"].parameters["PreflightDurationAlarmMilliseconds"] == "20000",
        ),
    ],
    ids=[
        "batch-size-and-window",
        "max-receive-count",
        "ttl-attribute",
        "global-env",
        "readiness-receive-count-to-alarms",
        "duration-alarm-threshold",
    ],
)
def test_a_changed_template_value_shows_up_in_the_world(sandbox, change, seen):
    document = local_stack.load_template()
    change(document)
    deployed = local_stack.deploy(sandbox.aws.client, template=local_stack.transform(document), name="drift-check")
    assert seen(deployed, sandbox.aws.client)


def queue_attributes_of(client, url: str) -> dict[str, str]:
    return client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
