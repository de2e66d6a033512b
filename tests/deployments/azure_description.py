"""The Microsoft.Web API description that the fake Azure server checks requests against.

No package on PyPI or npm ships Microsoft's published Microsoft.Web OpenAPI files
(azure-rest-api-specs), so this reads the description that azure-mgmt-web itself was
generated from, as it stands in the installed package:

- every `build_*_request` function of azure/mgmt/web/operations/_operations.py gives one
  operation: HTTP method, URL template, api-version and query parameters;
- every operation method's overloads name the model of its request body;
- every model's `rest_field`s and type annotations give the wire names, types and
  required properties of a body (a property whose annotation is not Optional is required).

The files are parsed with `ast` at test time; nothing is copied into this repository.
"""

import ast
import datetime
import enum
import functools
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import azure.mgmt.web.models as models
import azure.mgmt.web.operations._operations as operations_module


@dataclass
class Operation:
    """One REST operation of the description."""

    builder: str
    method: str
    template: str
    api_version: str
    query: set[str]
    body_model: type | None = None
    pattern: re.Pattern = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        self.pattern = re.compile(f"^{regex}$")

    @property
    def specificity(self) -> tuple[int, int]:
        literal = re.sub(r"\{\w+\}", "", self.template)
        return len(literal), -self.template.count("{")


@functools.cache
def operations() -> list[Operation]:
    """Return every operation azure-mgmt-web describes."""
    tree = ast.parse(Path(operations_module.__file__).read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("build_"):
            operation = _operation_of(node)
            if operation is not None:
                found[node.name] = operation
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            _attach_body_models(node, found)
    return list(found.values())


def match(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """Return the most specific operation for `method` and `path`, with its path parameters."""
    candidates = []
    for operation in operations():
        found = operation.pattern.match(path)
        if found and operation.method == method:
            candidates.append((operation, found.groupdict()))
    if not candidates:
        return None
    return max(candidates, key=lambda candidate: candidate[0].specificity)


def path_exists(path: str) -> bool:
    """Tell whether any operation, whatever its method, has this path."""
    return any(operation.pattern.match(path) for operation in operations())


def _operation_of(node: ast.FunctionDef) -> Operation | None:
    template = method = api_version = None
    query = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Assign) and isinstance(child.value, ast.Constant):
            target = child.targets[0]
            if isinstance(target, ast.Name) and target.id == "_url":
                template = child.value.value
        if isinstance(child, (ast.Assign, ast.AnnAssign)):
            target = child.targets[0] if isinstance(child, ast.Assign) else child.target
            if isinstance(target, ast.Subscript) and getattr(target.value, "id", None) == "_params":
                query.add(target.slice.value)
        if isinstance(child, ast.Constant) and isinstance(child.value, str) and re.match(
                r"^\d{4}-\d{2}-\d{2}(-preview)?$", child.value):
            api_version = child.value
        if isinstance(child, ast.Call) and getattr(child.func, "id", None) == "HttpRequest":
            for keyword in child.keywords:
                if keyword.arg == "method":
                    method = keyword.value.value
    if template is None or method is None:
        return None
    return Operation(node.name, method, template, api_version or "", query)


def _attach_body_models(cls: ast.ClassDef, found: dict[str, Operation]) -> None:
    body_models: dict[str, str] = {}
    builders: dict[str, str] = {}
    initial_calls: dict[str, str] = {}
    for method in cls.body:
        if not isinstance(method, ast.FunctionDef):
            continue
        is_overload = any(getattr(decorator, "id", None) == "overload" for decorator in method.decorator_list)
        if is_overload:
            for argument in method.args.args + method.args.kwonlyargs:
                annotation = argument.annotation
                if isinstance(annotation, ast.Attribute) and getattr(annotation.value, "id", None) == "_models":
                    body_models[method.name] = annotation.attr
            continue
        for child in ast.walk(method):
            if isinstance(child, ast.Call) and getattr(child.func, "id", "").startswith("build_"):
                builders[method.name] = child.func.id
            # A long-running operation's begin_* method sends its request through self._*_initial.
            if isinstance(child, ast.Call) and getattr(child.func, "attr", "").endswith("_initial"):
                initial_calls[method.name] = child.func.attr
    for name, model in body_models.items():
        builder = builders.get(name) or builders.get(initial_calls.get(name, ""))
        if builder in found:
            found[builder].body_model = getattr(models, model)


# -- bodies -------------------------------------------------------------------------------------------

def body_problems(value: object, model: type) -> list[str]:
    """Return what is wrong with the JSON `value` as a body of `model`; empty when it fits."""
    return _problems(value, model, "body")


@functools.cache
def _fields(model: type) -> dict[str, tuple[object, bool]]:
    """Return {wire name: (annotation, required)} of a model."""
    model.__new__(model)  # the SDK computes its field table when the first instance is made
    namespace = {**vars(models._models), "_models": models}
    hints = typing.get_type_hints(model, globalns=namespace)
    fields = {}
    for attribute, rest_field in model._attr_to_rest_field.items():
        annotation = hints.get(attribute, typing.Any)
        fields[rest_field._rest_name] = (annotation, not _is_optional(annotation))
    return fields


def _is_optional(annotation: object) -> bool:
    return typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(annotation)


def _problems(value: object, annotation: object, where: str) -> list[str]:
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if annotation is typing.Any:
        return []
    if origin is typing.Union:
        options = [option for option in arguments if option is not type(None)]
        if value is None and len(options) < len(arguments):
            return []
        attempts = [_problems(value, option, where) for option in options]
        return [] if any(not attempt for attempt in attempts) else attempts[0]
    if origin is typing.Literal:
        return [] if value in arguments else [f"{where} must be one of {arguments}, got {value!r}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where} must be an array, got {type(value).__name__}"]
        return [problem for index, item in enumerate(value)
                for problem in _problems(item, arguments[0], f"{where}[{index}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where} must be an object, got {type(value).__name__}"]
        return [problem for key, item in value.items() for problem in _problems(item, arguments[1], f"{where}.{key}")]
    if isinstance(annotation, type) and issubclass(annotation, models._models._Model):
        return _model_problems(value, annotation, where)
    return _scalar_problems(value, annotation, where)


def _model_problems(value: object, model: type, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where} must be an object ({model.__name__}), got {type(value).__name__}"]
    fields = _fields(model)
    problems = [f"{where}.{key} is not a property of {model.__name__}" for key in value if key not in fields]
    problems += [f"{where}.{key} is required in {model.__name__}" for key, (_, required) in fields.items()
                 if required and key not in value]
    for key, item in value.items():
        if key in fields:
            problems += _problems(item, fields[key][0], f"{where}.{key}")
    return problems


def _scalar_problems(value: object, annotation: object, where: str) -> list[str]:
    expected = {str: str, bool: bool, datetime.datetime: str, datetime.date: str, datetime.timedelta: str,
                bytes: str}
    if annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        ok = value in {member.value for member in annotation}
    elif annotation in expected:
        ok = isinstance(value, expected[annotation])
    else:
        ok = True
    return [] if ok else [f"{where} must be {getattr(annotation, '__name__', annotation)}, got {value!r}"]
