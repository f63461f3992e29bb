"""The local stack: ``template.yaml`` itself, transformed by the SAM translator and deployed
into moto, so the local world cannot drift from what ``sam deploy`` creates.

- **Transform.** ``template.yaml`` is read (short-form intrinsics and YAML anchors included),
  its ``CodeUri``/``ContentUri`` local paths become placeholder ``s3://`` URIs (as ``sam
  package`` would make them) and ``samtranslator`` turns it into plain CloudFormation, in
  the sandbox's region. Cached per process (:func:`transformed_template`).
- **Through moto's CloudFormation** (``DEPLOYED_TYPES``): the queues (attributes, redrive
  and redrive-allow policies, FIFO) and the tables (keys, GSIs, billing, SSE; named
  ``<stack>-<logical id>``, without CloudFormation's random suffix, so a redeployed world
  keeps its names), as one stack (``STACK_NAME``) with the template's own parameters,
  mappings, conditions and Outputs.
- **From the transformed template's own definitions**, where moto's CloudFormation falls
  short or cannot run the thing: the KMS keys (``CREATED_TYPES``: moto's CloudFormation
  fails on their tags), created before the stack; each table's TTL (moto's CloudFormation
  ignores ``TimeToLiveSpecification``); each function (``AWS::Lambda::Function``: handler,
  timeout, memory and environment, resolved to the stack's resources and parameters), run
  in-process by the sandbox; each SQS event source mapping (``AWS::Lambda::EventSourceMapping``:
  batch size, batching window, ``ReportBatchItemFailures``, ``MaximumConcurrency``), run by
  ``sandbox.poller.LocalPoller``. Every other resource (schedule, log groups, ...) is only
  named: ``Ref``/``GetAtt`` of it resolve to a local name, so the stack's Outputs are complete.
- **Nested applications** (``AWS::Serverless::Application`` with a local ``Location``, e.g.
  ``MonitoringApp``: ``monitoring.yaml``, the alarms, their topic, the dashboard and the
  Contributor Insights rule) are not deployed either: their template is read, the
  parameters the parent gives them are resolved against the local stack (a parameter the
  nested template does not declare, or one it needs and is not given, is refused), and
  ``GetAtt <app>.Outputs.<key>`` resolves to the nested Output over local names of its
  resources (:class:`NestedApplication`, ``LocalStack.applications``).

The stack's Outputs carry the same keys as ``template.yaml``'s Outputs: read them with
:func:`local_stack_outputs` (CloudFormation ``DescribeStacks``, as for a deployed stack).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's account
STACK_NAME = "export-preflight-sandbox"
ARTIFACT_BUCKET = "export-preflight-sandbox-artifacts"  # placeholder for CodeUri / ContentUri

#: what goes through moto's CloudFormation
DEPLOYED_TYPES = frozenset({"AWS::SQS::Queue", "AWS::DynamoDB::Table"})
#: what is created from its definition in the transformed template (moto's CloudFormation
#: cannot take it: its AWS::KMS::Key fails on CloudFormation's ``Key``/``Value`` tags)
CREATED_TYPES = frozenset({"AWS::KMS::Key"})
#: a nested application (``AWS::Serverless::Application`` once transformed): only named locally,
#: its Outputs resolved from its own template (:class:`NestedApplication`)
NESTED_TYPE = "AWS::CloudFormation::Stack"
#: template properties the local world cannot have (moto has no such thing), by resource type
NOT_LOCAL = {"AWS::SQS::Queue": {"RedriveAllowPolicy": "moto's SQS has no redrive-allow policy"}}
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}
NO_VALUE = object()


# ---------------------------------------------------------------- the template


class _TemplateLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML with CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``, ...)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506
    return document


def transform(document: dict[str, Any]) -> dict[str, Any]:
    """The SAM template as plain CloudFormation (``samtranslator``), in ``REGION``; local code
    and nested-application template paths become ``s3://`` URIs first, as ``sam package``
    makes them. ``document`` is not changed."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    document = copy.deepcopy(document)
    for resource in document.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "Location"):
            if isinstance(properties.get(key), str) and not properties[key].startswith(("s3://", "https://")):
                properties[key] = f"s3://{ARTIFACT_BUCKET}/{properties[key].strip('/')}"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    result: dict[str, Any] = translator.translate(document, parameter_values={}, get_managed_policy_map=lambda: {})
    return result


@functools.cache
def _transformed(path: str) -> str:
    return json.dumps(transform(load_template(Path(path))))


def transformed_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """``template.yaml`` transformed (cached per process; a fresh copy each call)."""
    result: dict[str, Any] = json.loads(_transformed(str(path)))
    return result


@functools.cache
def _nested(path: str) -> str:
    document = load_template(Path(path))
    return json.dumps(transform(document) if "Transform" in document else document)


def nested_template(template_url: str) -> dict[str, Any]:
    """The template of a nested application, from its ``TemplateURL`` in the transformed
    template (a placeholder ``s3://`` URI of a path in this repository; transformed too if
    it is a SAM template). Cached per process; a fresh copy each call."""
    path = _code_path(template_url)
    if path == str(template_url) or not (TEMPLATE.parent / path).is_file():
        raise ValueError(f"a nested application's template is not a file of this repository: {template_url}")
    result: dict[str, Any] = json.loads(_nested(str(TEMPLATE.parent / path)))
    return result


# ---------------------------------------------------------------- intrinsic functions


class Resolver:
    """Resolves a transformed template's values: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``,
    ``Fn::FindInMap``, ``Fn::If`` (with its conditions), ``Fn::Join``, ``Fn::Split``,
    ``Fn::Select``, ``Fn::Equals``/``Not``/``And``/``Or``, ``AWS::NoValue``, against the
    stack's parameters and ``ref``/``attribute`` of its resources."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        *,
        ref: Callable[[str], Any],
        attribute: Callable[[str, str], Any],
    ) -> None:
        self.template = template
        self.parameters = dict(parameters)
        self._ref = ref
        self._attribute = attribute
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, argument)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        return self._ref(name)

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical, attribute = name.split(".", 1)
                return str(self._attribute(logical, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _parameter_values(template: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, definition in template.get("Parameters", {}).items():
        value = str(given[name]) if name in given else definition.get("Default")
        if value is None:
            raise ValueError(f"template parameter {name} has no default: give it a value")
        if definition.get("Type") == "CommaDelimitedList":
            values[name] = [] if value == "" else str(value).split(",")
        else:
            values[name] = str(value)
    unknown = set(given) - set(values)
    if unknown:
        raise ValueError(f"not parameters of the template: {sorted(unknown)}")
    return {**values, **PSEUDO}


def _sub(resolver: Resolver, argument: Any) -> str:
    if isinstance(argument, str):
        return resolver.sub(argument, {})
    text, variables = argument
    return resolver.sub(text, {k: resolver.resolve(v) for k, v in variables.items()})


def _if(resolver: Resolver, argument: Any) -> Any:
    name, then, otherwise = argument
    return resolver.resolve(then if resolver.condition(name) else otherwise)


def _get_att(resolver: Resolver, argument: Any) -> Any:
    logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
    return resolver._attribute(logical, resolver.resolve(attribute))


_FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": lambda r, a: r.ref(a),
    "Condition": lambda r, a: r.condition(a),
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::If": _if,
    "Fn::FindInMap": lambda r, a: r.template["Mappings"][r.resolve(a[0])][r.resolve(a[1])][r.resolve(a[2])],
    "Fn::Join": lambda r, a: str(r.resolve(a[0])).join(str(x) for x in r.resolve(a[1])),
    "Fn::Split": lambda r, a: str(r.resolve(a[1])).split(r.resolve(a[0])),
    "Fn::Select": lambda r, a: r.resolve(a[1])[int(r.resolve(a[0]))],
    "Fn::Equals": lambda r, a: str(r.resolve(a[0])) == str(r.resolve(a[1])),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(x) for x in a),
    "Fn::Or": lambda r, a: any(r.resolve(x) for x in a),
}


# ---------------------------------------------------------------- the local stack


@dataclass(frozen=True)
class EventSource:
    """One SQS event source mapping, as the transformed template defines it."""

    function: str  # the function's logical id
    queue: str  # the queue's logical id
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None
    enabled: bool


@dataclass(frozen=True)
class LocalFunction:
    """One ``AWS::Lambda::Function``, resolved: what the sandbox runs in-process."""

    logical_id: str
    name: str
    handler: str
    code_uri: str  # the template's CodeUri (a path in this repository)
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]


@dataclass(frozen=True)
class NestedApplication:
    """One nested application, not deployed locally: the parameters the parent gives it,
    resolved against the local stack, and its Outputs over local names of its resources."""

    logical_id: str
    name: str  # its local stack name, <parent stack>-<logical id>
    template: dict[str, Any]  # its own template
    parameters: dict[str, str]
    outputs: dict[str, str]


@dataclass
class LocalStack:
    """The deployed local stack: physical ids, resolved functions and event sources, Outputs."""

    name: str
    template: dict[str, Any]  # the transformed template
    parameters: dict[str, Any]
    physical_ids: dict[str, str]  # logical id -> physical id (moto's), deployed resources only
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    event_sources: list[EventSource] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    applications: dict[str, NestedApplication] = field(default_factory=dict)  # by logical id

    def ref(self, logical_id: str) -> str:
        return self.physical_ids[logical_id]

    def environment(self) -> dict[str, str]:
        """Every function's environment in one (the sandbox runs them in one process):
        a variable two functions set differently is refused."""
        merged: dict[str, str] = {}
        for function in self.functions.values():
            for name, value in function.environment.items():
                if merged.setdefault(name, value) != value:
                    raise ValueError(
                        f"{name} differs between the template's functions ({merged[name]!r}, {value!r}); "
                        "the sandbox runs them in one process with one environment"
                    )
        return merged

    def event_source(self, function: str) -> EventSource:
        (found,) = (source for source in self.event_sources if source.function == function)
        return found

    def function_with_handler(self, code_uri: str, handler: str) -> LocalFunction:
        (found,) = (f for f in self.functions.values() if f.code_uri == code_uri and f.handler == handler)
        return found


def _code_path(uri: Any) -> str:
    prefix = f"s3://{ARTIFACT_BUCKET}/"
    return uri[len(prefix) :] if isinstance(uri, str) and uri.startswith(prefix) else str(uri)


def _local_name(stack: str, logical: str, resource: Mapping[str, Any], resolver: Resolver) -> str:
    """The name a resource that is not deployed into moto goes by locally (its own name
    property when the template gives one, else ``<stack>-<logical id>``)."""
    key = _NAME_PROPERTY.get(resource["Type"], "")
    properties = resource.get("Properties", {})
    if key in properties:
        return str(resolver.resolve(properties[key]))
    return f"{stack}-{logical}"


_NAME_PROPERTY = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::InsightRule": "RuleName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
}


def _local_arn(kind: str, name: str) -> str:
    service, _, rest = kind.removeprefix("AWS::").partition("::")
    if kind == NESTED_TYPE:
        return f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{name}/local"
    if kind == "AWS::Lambda::Function":
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    if kind == "AWS::IAM::Role":
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
    if kind == "AWS::Logs::LogGroup":
        return f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
    return f"arn:aws:{service.lower()}:{REGION}:{ACCOUNT_ID}:{rest.lower()}/{name}"


def _local_ref(kind: str, name: str) -> str:
    """``Ref`` of a resource that is only named locally."""
    if kind == "AWS::SNS::Topic":
        return _local_arn(kind, name).replace("topic/", "")
    if kind == "AWS::Lambda::LayerVersion":
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1"
    if kind == NESTED_TYPE:  # a stack's Ref is its id (ARN)
        return _local_arn(kind, name)
    return name


def _local_attribute(kind: str, name: str, attribute: str) -> str:
    """``Fn::GetAtt`` of a resource that is only named locally (not a nested stack's Outputs)."""
    return _local_arn(kind, name) if attribute == "Arn" else name


class _Nested:
    """A nested application of the stack being deployed, resolved lazily: its Outputs are
    needed before moto deploys the parent (the parent's Outputs name them), when only the
    parameters that are names, not attributes of deployed resources, resolve."""

    def __init__(self, logical: str, resource: Mapping[str, Any], name: str, parent: Callable[[Any], Any]):
        self.logical = logical
        self.name = name
        self.template = nested_template(resource["Properties"]["TemplateURL"])
        self.given: dict[str, Any] = dict(resource["Properties"].get("Parameters", {}))
        declared = self.template.get("Parameters", {})
        unknown = set(self.given) - set(declared)
        if unknown:
            raise ValueError(f"{logical} is given parameters its template does not declare: {sorted(unknown)}")
        missing = {n for n, d in declared.items() if n not in self.given and "Default" not in d}
        if missing:
            raise ValueError(f"{logical} is not given parameters its template needs: {sorted(missing)}")
        defaults = _parameter_values(
            {"Parameters": {n: d for n, d in declared.items() if n not in self.given}}, {}
        )  # with the pseudo parameters
        self._parent = parent
        self._given_values: dict[str, str] = {}
        self._local: dict[str, tuple[str, str]] = {}  # logical id -> (type, local name)
        self.resolver = Resolver(
            self.template,
            {**defaults, "AWS::StackName": name},
            ref=self._ref,
            attribute=self._attribute,
        )
        for child, definition in self.template.get("Resources", {}).items():
            if "Condition" in definition and not self.resolver.condition(definition["Condition"]):
                continue
            self._local[child] = (definition["Type"], _local_name(name, child, definition, self.resolver))

    def parameter(self, name: str) -> str:
        """A given parameter's value (resolved in the parent at first use) checked against
        its declaration (Type Number, AllowedPattern, AllowedValues, MinValue/MaxValue)."""
        if name not in self._given_values:
            value = self._parent(self.given[name])
            value = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            _check_parameter(self.logical, name, self.template["Parameters"][name], value)
            self._given_values[name] = value
        return self._given_values[name]

    def output(self, key: str) -> str:
        outputs = self.template.get("Outputs", {})
        if key not in outputs:
            raise KeyError(f"{self.logical} has no Output {key}")
        return str(self.resolver.resolve(outputs[key]["Value"]))

    def resolved(self) -> NestedApplication:
        return NestedApplication(
            logical_id=self.logical,
            name=self.name,
            template=self.template,
            parameters={name: self.parameter(name) for name in self.given},
            outputs={key: self.output(key) for key in self.template.get("Outputs", {})},
        )

    def _ref(self, name: str) -> str:
        if name in self.given:
            return self.parameter(name)
        kind, local = self._local[name]
        return _local_ref(kind, local)

    def _attribute(self, logical: str, attribute: str) -> str:
        kind, local = self._local[logical]
        return _local_attribute(kind, local, attribute)


def _check_parameter(application: str, name: str, definition: Mapping[str, Any], value: str) -> None:
    problem = None
    if definition.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            problem = "is not a number"
        else:
            if "MinValue" in definition and number < float(definition["MinValue"]):
                problem = f"is below MinValue {definition['MinValue']}"
            if "MaxValue" in definition and number > float(definition["MaxValue"]):
                problem = f"is above MaxValue {definition['MaxValue']}"
    if "AllowedPattern" in definition and not re.fullmatch(definition["AllowedPattern"], value):
        problem = f"does not match AllowedPattern {definition['AllowedPattern']}"
    if "AllowedValues" in definition and value not in map(str, definition["AllowedValues"]):
        problem = f"is not one of AllowedValues {definition['AllowedValues']}"
    if problem:
        raise ValueError(f"{application} parameter {name}={value!r} {problem}")


def deploy(
    client: Callable[[str], Any],
    *,
    parameters: Mapping[str, Any] | None = None,
    template: dict[str, Any] | None = None,
    name: str = STACK_NAME,
) -> LocalStack:
    """Deploy the transformed template (``template``, default ``template.yaml``'s) into moto
    as stack ``name`` with ``parameters`` (the template's own; defaults for the rest).
    ``client(service)`` makes a boto3 client of the moto server."""
    template = copy.deepcopy(template) if template is not None else transformed_template()
    client = functools.cache(client)  # one client per service for this deployment
    resources: dict[str, Any] = template["Resources"]
    values = _parameter_values(template, parameters or {})
    values["AWS::StackName"] = name
    local: dict[str, str] = {}

    def not_deployed_yet(logical: str, *_: Any) -> Any:
        raise KeyError(logical)

    naming = Resolver(template, values, ref=not_deployed_yet, attribute=not_deployed_yet)
    included = {
        logical: resource
        for logical, resource in resources.items()
        if "Condition" not in resource or naming.condition(resource["Condition"])
    }
    deployed = {k: v for k, v in included.items() if v["Type"] in DEPLOYED_TYPES}
    for logical, resource in included.items():
        if logical not in deployed and resource["Type"] not in CREATED_TYPES:
            local[logical] = _local_name(name, logical, resource, naming)

    nested: dict[str, _Nested] = {}

    def application(logical: str) -> _Nested:
        if logical not in nested:
            nested[logical] = _Nested(logical, resources[logical], local[logical], parent=resolver.resolve)
        return nested[logical]

    def local_attribute(logical: str, attribute: str) -> str:
        kind = str(resources[logical]["Type"])
        if kind == NESTED_TYPE and attribute.startswith("Outputs."):
            return application(logical).output(attribute.removeprefix("Outputs."))
        return _local_attribute(kind, local[logical], attribute)

    def local_ref(logical: str) -> str:
        return _local_ref(str(resources[logical]["Type"]), local[logical])

    physical: dict[str, str] = {}
    attributes = _Attributes(client, resources, physical)

    def known_ref(logical: str) -> str:
        return physical[logical] if logical in physical else local_ref(logical)

    def known_attribute(logical: str, attribute: str) -> str:
        return attributes.get(logical, attribute) if logical in physical else local_attribute(logical, attribute)

    resolver = Resolver(template, values, ref=known_ref, attribute=known_attribute)
    for logical, resource in included.items():
        if resource["Type"] in CREATED_TYPES:
            physical[logical] = _create(client, resource, resolver)

    # What moto deploys may name what it does not (a role's policy naming the sweep function):
    # those references become the local names before the template goes to moto.
    def localise(value: Any) -> Any:
        if isinstance(value, list):
            return [localise(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref" and (argument in local or argument in physical):
                return known_ref(argument)
            if key == "Fn::GetAtt":
                logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                if logical in local or logical in physical:
                    return known_attribute(logical, attribute)
            if key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument

                def replace(match: re.Match[str]) -> str:
                    target = match.group(1)
                    logical, _, attribute = target.partition(".")
                    if target in variables or (logical not in local and logical not in physical):
                        return match.group(0)
                    return known_attribute(logical, attribute) if attribute else known_ref(logical)

                text = re.sub(r"\$\{([^!}][^}]*)\}", replace, text)
                return {"Fn::Sub": text if isinstance(argument, str) else [text, localise(variables)]}
        return {k: localise(v) for k, v in value.items()}

    # CloudFormation names a table it is not given a name for <stack>-<logical id>-<random>;
    # the local stack leaves out the random part, so a redeployed world (a reset between
    # tests) has the same names (a process keeps the names it read first).
    for logical, resource in deployed.items():
        if resource["Type"] == "AWS::DynamoDB::Table":
            resource.setdefault("Properties", {}).setdefault("TableName", f"{name}-{logical}")
    moto_template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": template.get("Parameters", {}),
        "Mappings": template.get("Mappings", {}),
        "Conditions": template.get("Conditions", {}),
        "Resources": localise(deployed),
        "Outputs": localise(template.get("Outputs", {})),
    }
    cloudformation = client("cloudformation")
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(moto_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in sorted((parameters or {}).items())],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    physical.update(
        (r["LogicalResourceId"], r["PhysicalResourceId"])
        for r in cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    )
    missing = set(deployed) - set(physical)
    if missing:
        raise RuntimeError(f"moto's CloudFormation did not create {sorted(missing)}")
    _apply_what_moto_leaves_out(client, deployed, physical, resolver)
    stack = LocalStack(name, template, values, physical)
    for logical, resource in included.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            variables = resolver.resolve(properties.get("Environment", {}).get("Variables", {}))
            stack.functions[logical] = LocalFunction(
                logical_id=logical,
                name=local[logical],
                handler=str(properties["Handler"]),
                code_uri=_code_path(resolver.resolve(properties["Code"]).get("S3Key", ""))
                if "Code" in properties
                else "",
                timeout_seconds=int(resolver.resolve(properties.get("Timeout", 3))),
                memory_mb=int(resolver.resolve(properties.get("MemorySize", 128))),
                environment={k: str(v) for k, v in variables.items()},
            )
        elif resource["Type"] == "AWS::Lambda::EventSourceMapping":
            stack.event_sources.append(_event_source(properties, resolver))
        elif resource["Type"] == NESTED_TYPE:
            # Every parameter it is given must resolve against the deployed local stack.
            stack.applications[logical] = application(logical).resolved()
    stack.outputs = local_stack_outputs(client, name)
    return stack


def _event_source(properties: Mapping[str, Any], resolver: Resolver) -> EventSource:
    function = properties["FunctionName"]["Ref"]
    queue = properties["EventSourceArn"]["Fn::GetAtt"][0]
    resolved = resolver.resolve({k: v for k, v in properties.items() if k not in ("FunctionName", "EventSourceArn")})
    return EventSource(
        function=function,
        queue=queue,
        batch_size=int(resolved.get("BatchSize", 10)),  # Lambda's default for SQS
        batching_window_seconds=int(resolved.get("MaximumBatchingWindowInSeconds", 0)),
        report_batch_item_failures="ReportBatchItemFailures" in resolved.get("FunctionResponseTypes", []),
        maximum_concurrency=int(resolved["ScalingConfig"]["MaximumConcurrency"])
        if "MaximumConcurrency" in resolved.get("ScalingConfig", {})
        else None,
        enabled=str(resolved.get("Enabled", True)).lower() != "false",
    )


class _Attributes:
    """``Fn::GetAtt`` of the resources moto deployed, asked of moto itself."""

    def __init__(self, client: Callable[[str], Any], resources: Mapping[str, Any], physical: Mapping[str, str]):
        self._client = client
        self._resources = resources
        self._physical = physical
        self._cache: dict[tuple[str, str], str] = {}

    def get(self, logical: str, attribute: str) -> str:
        key = (logical, attribute)
        if key not in self._cache:
            self._cache[key] = self._ask(self._resources[logical]["Type"], self._physical[logical], attribute)
        return self._cache[key]

    def _ask(self, kind: str, physical: str, attribute: str) -> str:
        if kind == "AWS::SQS::Queue" and attribute in ("Arn", "QueueName"):
            arn = self._client("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])
            arn = arn["Attributes"]["QueueArn"]
            return str(arn if attribute == "Arn" else arn.rsplit(":", 1)[1])
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return str(self._client("dynamodb").describe_table(TableName=physical)["Table"]["TableArn"])
        if kind == "AWS::KMS::Key" and attribute in ("Arn", "KeyId"):
            return str(self._client("kms").describe_key(KeyId=physical)["KeyMetadata"][attribute])
        if kind == "AWS::IAM::Role" and attribute in ("Arn", "RoleId"):
            return str(self._client("iam").get_role(RoleName=physical)["Role"][attribute])
        raise KeyError(f"GetAtt {attribute} of a {kind} is not known locally")


def _create(client: Callable[[str], Any], resource: Mapping[str, Any], resolver: Resolver) -> str:
    """Create one resource of ``CREATED_TYPES`` from its definition; its physical id."""
    properties = resolver.resolve(resource.get("Properties", {}))
    if resource["Type"] == "AWS::KMS::Key":
        kms = client("kms")
        key = kms.create_key(
            Description=properties.get("Description", ""),
            KeyUsage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
            KeySpec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
            Policy=json.dumps(properties["KeyPolicy"]),
            Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties.get("Tags", [])],
        )["KeyMetadata"]["KeyId"]
        if str(properties.get("EnableKeyRotation", False)).lower() == "true":
            kms.enable_key_rotation(KeyId=key)
        return str(key)
    raise ValueError(f"cannot create a {resource['Type']} locally")


def _apply_what_moto_leaves_out(
    client: Callable[[str], Any], deployed: Mapping[str, Any], physical: Mapping[str, str], resolver: Resolver
) -> None:
    """moto's CloudFormation ignores a table's ``TimeToLiveSpecification``: set it from the
    table's own definition."""
    dynamodb = client("dynamodb")
    for logical, resource in deployed.items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        ttl = resolver.resolve(resource.get("Properties", {}).get("TimeToLiveSpecification"))
        if ttl:
            dynamodb.update_time_to_live(
                TableName=physical[logical],
                TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"],
                    "Enabled": str(ttl.get("Enabled", True)).lower() == "true",
                },
            )


def local_stack_outputs(client: Callable[[str], Any], name: str = STACK_NAME) -> dict[str, str]:
    """The local stack's Outputs, by key (the keys of ``template.yaml``'s Outputs), read
    with CloudFormation ``DescribeStacks`` from moto, exactly as for a deployed stack:
    ``client(service)`` makes a boto3 client of the sandbox's moto server (e.g.
    ``Sandbox.aws.client``). The CLI's ``--sandbox`` resolves its settings from these the
    way ``--stack NAME`` does from a real stack's Outputs."""
    (found,) = client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def parameters_feeding(template: Mapping[str, Any]) -> dict[str, str]:
    """Function setting -> the template parameter it is (``Variables: {X: !Ref Param}``)."""
    parameters = template.get("Parameters", {})
    feeding: dict[str, str] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        for name, value in resource["Properties"].get("Environment", {}).get("Variables", {}).items():
            if isinstance(value, dict) and list(value) == ["Ref"] and value["Ref"] in parameters:
                feeding[name] = value["Ref"]
    return feeding


def redrive_max_receive_count(queue: str = "ClaimedJobsQueue", template: dict[str, Any] | None = None) -> int:
    """The ``maxReceiveCount`` of a queue's RedrivePolicy in the transformed template (default parameters)."""
    template = template or transformed_template()
    values = _parameter_values(template, {})

    def unknown(*names: str) -> Any:
        raise KeyError(names)

    resolver = Resolver(template, values, ref=unknown, attribute=unknown)
    policy = template["Resources"][queue]["Properties"]["RedrivePolicy"]
    return int(resolver.resolve(policy["maxReceiveCount"]))
