"""deploy/argocd/notifications.yaml: the ConfigMap Argo CD Notifications reads, and what it sends.

The webhook body is a Go template. It is rendered here by a model of the text/template subset it
uses (sprig's toJson, toString, list, append, dict; eq, and; if/else, range, variables), which
refuses anything else, on the sample Application states in tests/lifecycle/data: the result must
be the committed sample events, valid JSON that ``textclf rollout`` reads. The triggers' ``when``
conditions (expr-lang) are evaluated on the same states by a model of the subset they use.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import typing
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pydantic
import pytest
import yaml

from textclf.lifecycle.rollout import EVENT_TYPES, Payload, parse_event

from .conftest import DEPLOY_DIR, K8S_VERSION, REPO_URL, load_yaml_documents, one, render

NOTIFICATIONS = DEPLOY_DIR / "argocd" / "notifications.yaml"
DATA = Path(__file__).resolve().parents[1] / "lifecycle" / "data"
WORKFLOW = DEPLOY_DIR.parent / ".github" / "workflows" / "rollout.yml"
SUBSCRIBE = "notifications.argoproj.io/subscribe."
SERVICE = "github-dispatch"
TEMPLATE = "rollout-result"


def configmap() -> dict[str, Any]:
    (doc,) = load_yaml_documents(NOTIFICATIONS)
    return doc


def _data_yaml(key: str, cm: dict[str, Any] | None = None) -> Any:
    return yaml.safe_load((cm or configmap())["data"][key])


def body_template(cm: dict[str, Any] | None = None) -> str:
    return str(_data_yaml(f"template.{TEMPLATE}", cm)["webhook"][SERVICE]["body"])


def app_state(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"app-{name}.json").read_text("utf-8"))


def sample_event(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"event-{name}.json").read_text("utf-8"))


# --------------------------------------------------------------------------- Go templates


class Missing:
    """text/template's invalid value: a map key that is not there (``<no value>``)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = Missing()
_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)
_TERM = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<open>\()|(?P<close>\))|(?P<word>[^\s()]+))'
)


def _go_json(value: Any) -> str:
    """sprig's toJson: encoding/json's Marshal (compact, map keys sorted, <>& escaped)."""
    text = json.dumps(
        None if value is MISSING else value,
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    )
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _go_str(value: Any) -> str:
    """sprig's toString (fmt's %v): a nil or missing value is ``<nil>``."""
    return "<nil>" if value is None or value is MISSING else str(value)


def _truth(value: Any) -> bool:
    return not (value is MISSING or value is None or value in ("", 0, False, [], {}))


def _eq(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING or isinstance(a, dict | list) or isinstance(b, dict | list):
        raise TypeError("eq: invalid type for comparison")
    return bool(a == b)


def _and(*args: Any) -> Any:
    for arg in args:
        if not _truth(arg):
            return arg
    return args[-1]


def _dict(*args: Any) -> dict[str, Any]:
    if len(args) % 2:
        raise TypeError("dict takes key/value pairs")
    return {
        str(k): (None if v is MISSING else v) for k, v in zip(args[::2], args[1::2], strict=True)
    }


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "toJson": _go_json,
    "toString": _go_str,
    "list": lambda *a: list(a),
    "append": lambda seq, v: [*seq, None if v is MISSING else v],
    "dict": _dict,
    "eq": _eq,
    "and": _and,
}


def _field(value: Any, path: str) -> Any:
    for name in filter(None, path.split(".")):
        if value is MISSING:
            return MISSING
        if not isinstance(value, dict):
            raise TypeError(f"can't evaluate field {name} in {type(value).__name__}")
        value = value.get(name, MISSING)
    return value


def _tokens(expr: str) -> list[str]:
    out, pos = [], 0
    while pos < len(expr.rstrip()):
        found = _TERM.match(expr, pos)
        if not found:
            raise ValueError(f"cannot read {expr[pos:]!r}")
        out.append(found.group(found.lastgroup or ""))
        pos = found.end()
    return out


class Scope:
    """Variables as text/template keeps them: each if/range body is a new frame; ``:=`` declares
    in the innermost one, ``=`` assigns where the variable was declared."""

    def __init__(self, dot: Any) -> None:
        self.frames: list[dict[str, Any]] = [{"$": dot}]
        self.dot = dot

    def get(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise NameError(f"undefined variable {name}")

    def assign(self, name: str, value: Any) -> None:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise NameError(f"undefined variable {name}")


def _eval(tokens: list[str], scope: Scope) -> Any:
    """A command: ``fn arg...`` or a single operand; operands are literals, paths, (commands)."""
    args: list[Any] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "(":
            depth, j = 1, i + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(tokens[j], 0)
                j += 1
            args.append(_eval(tokens[i + 1 : j - 1], scope))
            i = j
            continue
        if tok.startswith('"'):
            args.append(json.loads(tok))
        elif tok.startswith("."):
            args.append(_field(scope.dot, tok))
        elif tok.startswith("$"):
            name, _, path = tok.partition(".")
            args.append(_field(scope.get(name), path))
        elif tok in FUNCTIONS and i == 0:
            args.append(FUNCTIONS[tok])
        else:
            raise ValueError(f"unsupported term {tok!r}")
        i += 1
    if args and callable(args[0]):
        return args[0](*args[1:])
    if len(args) != 1:
        raise ValueError(f"not a command: {tokens}")
    return args[0]


def _pieces(text: str) -> list[tuple[str, str]]:
    """Text and action pieces, with ``{{-`` / ``-}}`` trimming applied to the text."""
    pieces: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for found in _ACTION.finditer(text):
        before = text[pos : found.start()]
        before = before.lstrip() if trim_next else before
        before = before.rstrip() if found.group(1) else before
        pieces += [("text", before), ("action", found.group(2))]
        trim_next, pos = bool(found.group(3)), found.end()
    pieces.append(("text", text[pos:].lstrip() if trim_next else text[pos:]))
    return pieces


def _parse(text: str) -> list[Any]:
    """A tree: ("text", s), ("out", expr), ("set", var, op, expr), ("if", expr, then, else),
    ("range", var, expr, body). Any other action is refused."""
    root: list[Any] = []
    stack: list[list[Any]] = [root]
    for kind, value in _pieces(text):
        head, _, rest = value.partition(" ")
        if kind == "text":
            stack[-1].append(("text", value))
        elif head == "if":
            node: list[Any] = ["if", rest, [], []]
            stack[-1].append(node)
            stack.append(node[2])
        elif value == "else":
            stack.pop()
            assert stack[-1][-1][0] == "if", "else outside if"
            stack.append(stack[-1][-1][3])
        elif value == "end":
            stack.pop()
        elif head == "range":
            var, assign, expr = rest.partition(" := ")
            assert assign and re.fullmatch(r"\$\w+", var), f"unsupported range {value!r}"
            node = ["range", var, expr, []]
            stack[-1].append(node)
            stack.append(node[3])
        elif found := re.fullmatch(r"(\$\w+) (:?=) (.+)", value, re.S):
            stack[-1].append(["set", *found.groups()])
        elif head in {"with", "define", "template", "block", "break", "continue"} or "|" in value:
            raise ValueError(f"unsupported action {value!r}")
        else:
            stack[-1].append(["out", value])
    assert len(stack) == 1, "unclosed action"
    return root


def _run(nodes: list[Any], scope: Scope, out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "out":
            value = _eval(_tokens(node[1]), scope)
            out.append("<no value>" if value is MISSING else str(value))
        elif kind == "set":
            value = _eval(_tokens(node[3]), scope)
            if node[2] == ":=":
                scope.frames[-1][node[1]] = value
            else:
                scope.assign(node[1], value)
        elif kind == "if":
            branch = node[2] if _truth(_eval(_tokens(node[1]), scope)) else node[3]
            scope.frames.append({})
            _run(branch, scope, out)
            scope.frames.pop()
        elif kind == "range":
            items = _eval(_tokens(node[2]), scope)
            for item in [] if items is MISSING or items is None else items:
                scope.frames.append({node[1]: item})
                _run(node[3], scope, out)
                scope.frames.pop()


def render_go(template: str, variables: dict[str, Any]) -> str:
    """``template`` executed like text/template with sprig on ``variables``."""
    out: list[str] = []
    _run(_parse(template), Scope(variables), out)
    return "".join(out)


def send(app: dict[str, Any], cm: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body Argo CD posts for ``app``: {event_type, client_payload}."""
    text = render_go(body_template(cm), {"app": app, "context": {}})
    return json.loads(text)


def test_the_template_model_follows_text_template() -> None:
    """Missing fields are null through toJson, trimming, scoping, eq on a missing value."""
    assert render_go('{{ toJson .a.b.c }} {{- " x" }}', {"a": {}}) == "null x"
    assert render_go('{{ toJson (dict "k" .nope) }}', {}) == '{"k":null}'
    assert render_go('{{ toJson "<&>" }}', {}) == '"\\u003c\\u0026\\u003e"'
    loop = "{{- $l := list -}}{{- range $x := .xs -}}{{- $l = append $l $x.n -}}{{- end -}}"
    assert render_go(loop + "{{ toJson $l }}", {"xs": [{"n": 1}, {}]}) == "[1,null]"
    assert render_go(loop + "{{ toJson $l }}", {}) == "[]"
    assert render_go('{{ if eq (toString .s) "<nil>" }}y{{ else }}n{{ end }}', {}) == "y"
    with pytest.raises(TypeError):
        render_go('{{ if eq .missing "x" }}{{ end }}', {})
    for unsupported in (
        "{{ .a | toJson }}",
        '{{ template "x" }}',
        "{{ with .a }}{{ end }}",
        '{{ printf "%s" .a }}',
    ):
        with pytest.raises(ValueError):
            render_go(unsupported, {"a": 1})


# --------------------------------------------------------------------------- the body


@pytest.mark.parametrize("state", ["completed", "degraded"])
def test_the_template_renders_the_committed_sample_events(state: str) -> None:
    """The sample events in tests/lifecycle/data are exactly what the template sends."""
    body = send(app_state(state))
    event = sample_event(state)
    assert body == {"event_type": event["action"], "client_payload": event["client_payload"]}
    parsed = parse_event(event, f"event-{state}.json")
    assert parsed.action == f"rollout-{state}"


def test_the_payload_carries_the_sync_revision_and_the_rollouts_state() -> None:
    app = app_state("degraded")
    payload = send(app)["client_payload"]
    assert payload["revision"] == app["status"]["sync"]["revision"]
    assert (
        payload["operation"]["syncRevision"]
        == app["status"]["operationState"]["syncResult"]["revision"]
    )
    assert payload["images"] == app["status"]["summary"]["images"]
    (rollout,) = [r for r in app["status"]["resources"] if r["kind"] == "Rollout"]
    assert payload["rollouts"] == [
        {
            "name": rollout["name"],
            "namespace": rollout["namespace"],
            "status": rollout["status"],
            "health": {"status": "Degraded", "message": rollout["health"]["message"]},
        }
    ]
    assert "failureLimit (1)" in payload["rollouts"][0]["health"]["message"]
    assert len(payload) <= 10, "GitHub takes at most 10 top-level client_payload properties"
    assert payload["app"]["environment"] == "production"


def _key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{prefix}{key}"
            yield from _key_paths(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for item in value:
            yield from _key_paths(item, f"{prefix}[].")


def _model_paths(model: type[pydantic.BaseModel], prefix: str = "") -> Iterator[str]:
    """Every JSON key (by alias) the command reads from the payload, nested models included."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        yield f"{prefix}{key}"
        annotation, inner = field.annotation, f"{prefix}{key}."
        if typing.get_origin(annotation) is list:
            (annotation,) = typing.get_args(annotation)
            inner += "[]."
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            yield from _model_paths(annotation, inner)


def test_every_field_the_command_reads_appears_in_the_committed_template() -> None:
    """What `textclf rollout` reads is what the template writes, no more, no less."""
    read = set(_model_paths(Payload))
    assert {"revision", "operation.syncRevision", "rollouts.[].health.message", "images"} <= read
    sent = set(_key_paths(send(app_state("degraded"))["client_payload"]))
    assert read == sent
    text = body_template()
    for path in read:
        assert f'"{path.rsplit(".", 1)[-1]}"' in text, path


def test_the_field_check_catches_a_dropped_field() -> None:
    cm = copy.deepcopy(configmap())
    template = _data_yaml(f"template.{TEMPLATE}", cm)
    body = template["webhook"][SERVICE]["body"]
    template["webhook"][SERVICE]["body"] = re.sub(r'\s*"images": .*\n', "\n", body)
    cm["data"][f"template.{TEMPLATE}"] = yaml.safe_dump(template)
    sent = set(_key_paths(send(app_state("degraded"), cm)["client_payload"]))
    assert set(_model_paths(Payload)) - sent == {"images"}


def test_the_body_stays_json_whatever_the_status_holds() -> None:
    """Quotes, backslashes, newlines and markup in a message; a status with no optional part."""
    app = app_state("degraded")
    hostile = 'Metric "x" \\ failed\n</script><b>@admin</b> #1 | {{ .secrets }} & more'
    next(r for r in app["status"]["resources"] if r["kind"] == "Rollout")["health"]["message"] = (
        hostile
    )
    payload = send(app)["client_payload"]
    assert payload["rollouts"][0]["health"]["message"] == hostile

    bare = {
        "metadata": {"name": "textclf-production"},
        "status": {"sync": {"revision": "a" * 40}, "health": {"status": "Degraded"}},
    }
    body = send(bare)
    assert body["event_type"] == "rollout-degraded"
    event = parse_event({"action": body["event_type"], **body}, "bare")
    assert event.client_payload.images == [] and event.client_payload.rollouts == []
    assert event.client_payload.operation.phase is None


def test_argo_cd_3_without_persisted_resource_health_still_sends_the_rollout() -> None:
    """Argo CD 3 drops .status.resources[].health unless controller.resource.health.persist."""
    app = app_state("degraded")
    for resource in app["status"]["resources"]:
        resource.pop("health", None)
    (rollout,) = send(app)["client_payload"]["rollouts"]
    assert rollout["health"] == {"status": None, "message": None}


# --------------------------------------------------------------------------- triggers


class _Obj:
    """expr-lang's view of a map: a missing key is nil."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        return _Obj(value) if isinstance(value, dict) else value


class _Time:
    def __init__(self, value: datetime) -> None:
        self.value = value

    def After(self, other: _Time) -> bool:  # noqa: N802 - Go's method name
        return self.value > other.value

    def Before(self, other: _Time) -> bool:  # noqa: N802 - Go's method name
        return self.value < other.value


class _TimeFunctions:
    @staticmethod
    def Parse(value: Any) -> _Time:  # noqa: N802 - Go's function name
        if not isinstance(value, str):
            raise TypeError("time.Parse of a non-string")
        return _Time(datetime.fromisoformat(value.replace("Z", "+00:00")))


_EXPR_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.In,
    ast.Attribute,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.List,
    ast.Call,
)


def when(condition: str, app: dict[str, Any]) -> bool:
    """A trigger condition (the expr-lang subset the triggers use) evaluated on ``app``."""
    python = condition.replace("?.", ".").replace("nil", "None")
    tree = ast.parse(python, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, _EXPR_NODES):
            raise ValueError(f"unsupported {type(node).__name__} in {condition!r}")
        if isinstance(node, ast.Name) and node.id not in {"app", "time", "None"}:
            raise ValueError(f"unknown name {node.id}")
    code = compile(tree, "<when>", "eval")
    result = eval(code, {"__builtins__": {}}, {"app": _Obj(app), "time": _TimeFunctions})
    assert isinstance(result, bool)
    return result


def triggers(cm: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    cm = cm or configmap()
    return {
        key.removeprefix("trigger."): yaml.safe_load(value)
        for key, value in cm["data"].items()
        if key.startswith("trigger.")
    }


def fires(trigger: str, app: dict[str, Any]) -> bool:
    return any(when(c["when"], app) for c in triggers()[trigger])


def test_completed_fires_once_the_canary_passed_and_degraded_on_an_abort() -> None:
    completed, degraded = app_state("completed"), app_state("degraded")
    assert fires("on-rollout-completed", completed)
    assert not fires("on-rollout-degraded", completed)
    assert fires("on-rollout-degraded", degraded)
    assert not fires("on-rollout-completed", degraded)


def test_neither_trigger_reads_the_health_from_before_the_sync() -> None:
    """Right after a sync, before Argo CD refreshed the application, the health is stale."""
    for state, trigger in (
        ("completed", "on-rollout-completed"),
        ("degraded", "on-rollout-degraded"),
    ):
        app = app_state(state)
        app["status"]["reconciledAt"] = "2026-05-04T10:15:59Z"  # before the sync finished
        assert not fires(trigger, app), trigger
        running = app_state(state)
        running["status"]["operationState"] = {
            "phase": "Running",
            "startedAt": "2026-05-04T11:00:00Z",
        }
        assert not fires(trigger, running), trigger


def test_triggers_send_once_per_synced_revision_through_the_template() -> None:
    found = triggers()
    assert set(found) == {"on-rollout-completed", "on-rollout-degraded"}
    for name, conditions in found.items():
        for condition in conditions:
            assert condition["send"] == [TEMPLATE], name
            assert condition["oncePer"] == "app.status.operationState?.syncResult?.revision"
            assert condition["description"]


def test_the_expr_model_refuses_what_it_cannot_evaluate() -> None:
    with pytest.raises(ValueError):
        when("app.status.x.y() == 1 or __import__('os')", {})
    with pytest.raises(TypeError):
        when("time.Parse(app.status.nope).After(time.Parse(app.status.nope))", {"status": {}})


# --------------------------------------------------------------------------- manifests


def test_the_configmap_is_argo_cds_and_validates() -> None:
    cm = configmap()
    assert (cm["kind"], cm["metadata"]["name"], cm["metadata"]["namespace"]) == (
        "ConfigMap",
        "argocd-notifications-cm",
        "argocd",
    )
    kubernetes_validate.validate(cm, K8S_VERSION, strict=True)
    assert all(isinstance(v, str) for v in cm["data"].values())
    assert one(render("argocd"), "ConfigMap", "argocd-notifications-cm") == cm
    for key in cm["data"]:
        assert key.split(".", 1)[0] in {"service", "template", "trigger"}, key
    assert not any(
        k.startswith(("context", "subscriptions", "defaultTriggers")) for k in cm["data"]
    )


def test_the_webhook_posts_a_dispatch_to_this_repository_with_the_secrets_token() -> None:
    service = _data_yaml(f"service.webhook.{SERVICE}")
    owner_repo = REPO_URL.removeprefix("https://github.com/").removesuffix(".git")
    assert service["url"] == f"https://api.github.com/repos/{owner_repo}/dispatches"
    headers = {h["name"]: h["value"] for h in service["headers"]}
    assert headers["Authorization"] == "Bearer $github-dispatch-token"  # a key of the Secret
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["Content-Type"] == "application/json"
    webhook = _data_yaml(f"template.{TEMPLATE}")["webhook"]
    assert set(webhook) == {SERVICE} and webhook[SERVICE]["method"] == "POST"
    assert "path" not in webhook[SERVICE], "the service's url is the dispatches endpoint"
    text = NOTIFICATIONS.read_text("utf-8")
    assert not re.search(r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_", text), "no token committed"


def test_the_event_types_are_the_workflows() -> None:
    sent = set(re.findall(r'"(rollout-[a-z]+)"', body_template()))
    assert sent == set(EVENT_TYPES)
    on = yaml.safe_load(WORKFLOW.read_text("utf-8"))[True]
    assert on["repository_dispatch"]["types"] == list(EVENT_TYPES)


def _subscriptions(app: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        tuple(key.removeprefix(SUBSCRIBE).split(".", 1))  # type: ignore[misc]
        for key in app["metadata"].get("annotations", {})
        if key.startswith(SUBSCRIBE)
    ]


def subscription_problems(apps: list[dict[str, Any]], cm: dict[str, Any]) -> list[str]:
    """Subscriptions that name a trigger or a service the ConfigMap does not define."""
    found = triggers(cm)
    services = {k.split(".")[-1] for k in cm["data"] if k.startswith("service.")}
    templates = {k.removeprefix("template.") for k in cm["data"] if k.startswith("template.")}
    problems = []
    for app in apps:
        for trigger, service in _subscriptions(app):
            if trigger not in found:
                problems.append(f"{app['metadata']['name']}: no trigger {trigger}")
            if service not in services:
                problems.append(f"{app['metadata']['name']}: no service {service}")
    for name, conditions in found.items():
        for condition in conditions:
            problems += [
                f"{name}: no template {t}" for t in condition["send"] if t not in templates
            ]
    return problems


def test_production_subscribes_to_both_triggers_and_staging_to_none() -> None:
    apps = {d["metadata"]["name"]: d for d in render("argocd") if d["kind"] == "Application"}
    assert sorted(_subscriptions(apps["textclf-production"])) == [
        ("on-rollout-completed", SERVICE),
        ("on-rollout-degraded", SERVICE),
    ]
    assert _subscriptions(apps["textclf-staging"]) == [], "a staging abort must not revert main"
    assert apps["textclf-production"]["metadata"]["labels"]["environment"] == "production"
    assert subscription_problems(list(apps.values()), configmap()) == []


def test_the_subscription_check_catches_a_dangling_name() -> None:
    apps = [d for d in render("argocd") if d["kind"] == "Application"]
    cm = copy.deepcopy(configmap())
    cm["data"]["trigger.on-rollout-degraded"] = cm["data"]["trigger.on-rollout-degraded"].replace(
        "[rollout-result]", "[rollout-gone]"
    )
    del cm["data"]["trigger.on-rollout-completed"]
    assert subscription_problems(apps, cm) == [
        "textclf-production: no trigger on-rollout-completed",
        "on-rollout-degraded: no template rollout-gone",
    ]
