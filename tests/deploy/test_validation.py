"""Schema validation: core kinds with kubernetes-validate (strict), CRDs with deploy/schemas."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from .conftest import (
    GITOPS_DIRS,
    K8S_VERSION,
    OVERLAYS,
    SCHEMA_DIR,
    Manifest,
    crd_schemas,
    is_core,
    iter_paths,
    one,
    render,
    render_overlay,
    schema_for,
)

SOURCES = tuple(f"overlays/{o}" for o in OVERLAYS) + GITOPS_DIRS
SCHEMA_FILES = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
#: Free-form maps (any key is valid) and the Rollout's pod template, whose spec is
#: validated by kubernetes-validate in test_rollout_pod_template_validates_strict.
FREE_FORM_KEYS = {"labels", "annotations", "matchLabels", "substitute", "nodeSelector"}
UNKNOWN = "notARealField"


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _k8s_validate(doc: Manifest) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} at {path}: {exc.message}")


def _custom_resources() -> list[Manifest]:
    docs: list[Manifest] = []
    for source in SOURCES:
        docs.extend(d for d in render(source) if not is_core(d))
    return docs


def _example_for(key: tuple[str, str]) -> Manifest:
    for doc in _custom_resources():
        if (doc["apiVersion"], doc["kind"]) == key:
            return doc
    pytest.fail(f"no rendered object uses the schema for {key}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_validate_strict(overlay: str) -> None:
    """Every built-in kind validates against Kubernetes' own schema, unknown fields rejected."""
    core = [d for d in render_overlay(overlay) if is_core(d)]
    assert {d["kind"] for d in core} >= {"Service", "CronJob", "HorizontalPodAutoscaler"}
    for doc in core:
        _k8s_validate(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_pod_template_validates_strict(overlay: str) -> None:
    """The Rollout's pod template is a core PodTemplateSpec: validate it as one."""
    rollout = one(render_overlay(overlay), "Rollout")
    wrapper = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "textclf-rollout-template"},
        "template": rollout["spec"]["template"],
    }
    _k8s_validate(wrapper)


def test_kubernetes_validate_runs_in_strict_mode() -> None:
    """Sanity: the core validation above really rejects unknown fields."""
    service = copy.deepcopy(one(render_overlay("production"), "Service"))
    service["spec"]["ports"][0][UNKNOWN] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, K8S_VERSION, strict=True)


@pytest.mark.parametrize("source", SOURCES)
def test_every_object_is_checked(source: str) -> None:
    """Each rendered object is either a core kind or has a hand-written schema."""
    for doc in render(source):
        if not is_core(doc):
            schema_for(doc)


@pytest.mark.parametrize("source", SOURCES)
def test_custom_resources_match_schemas(source: str) -> None:
    """Rollout, AnalysisTemplate, ServiceMonitor, Application, GitRepository, Kustomization."""
    for doc in render(source):
        if is_core(doc):
            continue
        errors = sorted(_validator(schema_for(doc)).iter_errors(doc), key=str)
        assert not errors, "\n".join(
            f"{doc['kind']}/{doc['metadata']['name']} at {list(e.path)}: {e.message}"
            for e in errors
        )


def test_all_schemas_are_used_and_expected() -> None:
    """The schema set is exactly the CRDs the repository uses."""
    used = {(d["apiVersion"], d["kind"]) for d in _custom_resources()}
    assert set(crd_schemas()) == used
    assert used == {
        ("argoproj.io/v1alpha1", "Rollout"),
        ("argoproj.io/v1alpha1", "AnalysisTemplate"),
        ("argoproj.io/v1alpha1", "Application"),
        ("argoproj.io/v1alpha1", "AppProject"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("source.toolkit.fluxcd.io/v1", "GitRepository"),
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    }


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_is_valid_and_closed(name: str) -> None:
    """Each schema is valid JSON Schema 2020-12 and closed at the top and spec levels."""
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["spec"]["additionalProperties"] is False
    assert set(schema["required"]) >= {"apiVersion", "kind", "metadata", "spec"}


def _is_free_form(path: tuple[Any, ...], doc: Manifest) -> bool:
    if path and path[-1] in FREE_FORM_KEYS:
        return True
    return doc["kind"] == "Rollout" and path[:3] == ("spec", "template", "spec")


@pytest.mark.parametrize("key", sorted(crd_schemas()), ids=lambda k: k[1])
def test_schema_rejects_unknown_fields_everywhere(key: tuple[str, str]) -> None:
    """Adding an unknown field to any object node of a real manifest is rejected."""
    schema = crd_schemas()[key]
    validator = _validator(schema)
    doc = _example_for(key)
    validator.validate(doc)
    checked = 0
    for path, node in iter_paths(doc):
        if not isinstance(node, dict) or _is_free_form(path, doc):
            continue
        mutated = copy.deepcopy(doc)
        target: Any = mutated
        for part in path:
            target = target[part]
        target[UNKNOWN] = "x"
        assert not validator.is_valid(mutated), f"{key[1]}: unknown field accepted at {path}"
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("key", sorted(crd_schemas()), ids=lambda k: k[1])
def test_schema_pins_api_version_and_kind(key: tuple[str, str]) -> None:
    """A different apiVersion or kind does not validate against the schema."""
    validator = _validator(crd_schemas()[key])
    doc = _example_for(key)
    wrong_version = {**doc, "apiVersion": key[0].rsplit("/", 1)[0] + "/v1beta1"}
    wrong_kind = {**doc, "kind": key[1] + "List"}
    assert not validator.is_valid(wrong_version)
    assert not validator.is_valid(wrong_kind)


_DELETE = object()
ROLLOUT = ("argoproj.io/v1alpha1", "Rollout")
ANALYSIS = ("argoproj.io/v1alpha1", "AnalysisTemplate")
APPLICATION = ("argoproj.io/v1alpha1", "Application")
FLUX_KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
GIT_REPOSITORY = ("source.toolkit.fluxcd.io/v1", "GitRepository")
SERVICE_MONITOR = ("monitoring.coreos.com/v1", "ServiceMonitor")
STEPS = ("spec", "strategy", "canary", "steps")
BAD_VALUES: list[tuple[tuple[str, str], tuple[Any, ...], Any]] = [
    (ROLLOUT, (*STEPS, 0, "setWeight"), 150),
    (ROLLOUT, (*STEPS, 1, "pause", "duration"), "2 minutes"),
    (ROLLOUT, (*STEPS, 1, "setWeight"), 50),  # two actions in one step
    (ANALYSIS, ("spec", "metrics", 0, "interval"), "soon"),
    (ANALYSIS, ("spec", "metrics", 0, "provider", "prometheus", "query"), _DELETE),
    (ANALYSIS, ("spec", "metrics", 0, "provider", "web"), {"url": "http://x"}),
    (APPLICATION, ("spec", "syncPolicy", "automated", "prune"), "yes"),
    (APPLICATION, ("spec", "destination"), {"namespace": "x"}),
    (FLUX_KUSTOMIZATION, ("spec", "prune"), _DELETE),
    (FLUX_KUSTOMIZATION, ("spec", "interval"), "10 minutes"),
    (GIT_REPOSITORY, ("spec", "url"), "github.com/x/y"),
    (SERVICE_MONITOR, ("spec", "endpoints"), []),
]


def _mutate(doc: Manifest, path: tuple[Any, ...], value: Any) -> Manifest:
    mutated = copy.deepcopy(doc)
    target: Any = mutated
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return mutated


@pytest.mark.parametrize(
    ("key", "path", "value"),
    BAD_VALUES,
    ids=[f"{k[1]}:{'.'.join(map(str, p))}" for k, p, _ in BAD_VALUES],
)
def test_schema_rejects_bad_values(key: tuple[str, str], path: tuple[Any, ...], value: Any) -> None:
    """Wrong types, out-of-range values and missing required fields are rejected."""
    doc = _example_for(key)
    validator = _validator(crd_schemas()[key])
    assert validator.is_valid(doc)
    assert not validator.is_valid(_mutate(doc, path, value))
