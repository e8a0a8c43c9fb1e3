"""Every overlay renders, and the rendered objects reference each other consistently."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from .conftest import (
    DEPLOY_DIR,
    GITOPS_DIRS,
    IMAGE_REPOSITORY,
    OVERLAYS,
    Manifest,
    by_kind,
    containers,
    load_yaml_documents,
    one,
    pod_specs,
    render,
    render_overlay,
)

EXPECTED_KINDS = {
    "Namespace",
    "ServiceAccount",
    "Service",
    "PersistentVolumeClaim",
    "Rollout",
    "AnalysisTemplate",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "ServiceMonitor",
    "CronJob",
    "NetworkPolicy",
    "PrometheusRule",
}
NAMESPACES = {
    "staging": "textclf-staging",
    "production": "textclf-production",
    "production-gpu": "textclf-production",
}


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """True when a matchLabels selector (non-empty) selects ``labels``."""
    match_labels = selector.get("matchLabels", selector)
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_expected_objects(overlay: str) -> None:
    """Each overlay renders the full set of kinds, once each, in its own namespace."""
    docs = render_overlay(overlay)
    assert {d["kind"] for d in docs} == EXPECTED_KINDS
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), f"duplicate objects in {overlay}"
    namespace = one(docs, "Namespace")["metadata"]["name"]
    assert namespace == NAMESPACES[overlay]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]


@pytest.mark.parametrize("directory", GITOPS_DIRS)
def test_gitops_bundles_render(directory: str) -> None:
    """deploy/argocd and deploy/flux are kustomizations too (bootstrap with kubectl -k)."""
    docs = render(directory)
    assert docs
    on_disk = sorted(
        p.name for p in (DEPLOY_DIR / directory).glob("*.yaml") if p.name != "kustomization.yaml"
    )
    listed = sum(len(load_yaml_documents(DEPLOY_DIR / directory / name)) for name in on_disk)
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    assert len(docs) == listed + len(namespaces), "every manifest in the folder is listed"
    assert directory == "flux" or not namespaces, "only the Flux bootstrap creates namespaces"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_reference_each_other(overlay: str) -> None:
    """Selectors, scale targets, claims, accounts and template names all resolve."""
    docs = render_overlay(overlay)
    rollout = one(docs, "Rollout", "textclf")
    pod_labels = rollout["spec"]["template"]["metadata"]["labels"]
    assert _matches(rollout["spec"]["selector"], pod_labels)

    service = one(docs, "Service", "textclf")
    assert _matches(service["spec"]["selector"], pod_labels)
    pdb = one(docs, "PodDisruptionBudget")
    assert _matches(pdb["spec"]["selector"], pod_labels)

    target = one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "textclf"}
    assert "replicas" not in rollout["spec"], "the HPA owns the replica count"

    monitor = one(docs, "ServiceMonitor")
    assert _matches(monitor["spec"]["selector"], service["metadata"]["labels"])
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= service_ports

    accounts = {d["metadata"]["name"] for d in by_kind(docs, "ServiceAccount")}
    claims = {d["metadata"]["name"] for d in by_kind(docs, "PersistentVolumeClaim")}
    for workload in (rollout, one(docs, "CronJob")):
        for pod in pod_specs(workload):
            assert pod["serviceAccountName"] in accounts
            volumes = {v["name"]: v for v in pod["volumes"]}
            for volume in volumes.values():
                if "persistentVolumeClaim" in volume:
                    assert volume["persistentVolumeClaim"]["claimName"] in claims
            for container in pod["containers"]:
                for mount in container.get("volumeMounts", []):
                    assert mount["name"] in volumes

    templates = {d["metadata"]["name"]: d for d in by_kind(docs, "AnalysisTemplate")}
    for step in rollout["spec"]["strategy"]["canary"]["steps"]:
        if "analysis" not in step:
            continue
        passed = {a["name"] for a in step["analysis"].get("args", [])}
        for ref in step["analysis"]["templates"]:
            template = templates[ref["templateName"]]
            required = {a["name"] for a in template["spec"]["args"] if "value" not in a}
            assert required <= passed, f"Rollout does not pass {required - passed}"


def _without(docs: list[Manifest], *kinds: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] not in kinds]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def _gpu_image_as_cpu(docs: list[Manifest]) -> list[Manifest]:
    """``docs`` with the GPU repository (``<repo>-gpu:<tag>``) written as the CPU one."""
    text = yaml.safe_dump_all(docs, sort_keys=True).replace(
        f"{IMAGE_REPOSITORY}-gpu:", f"{IMAGE_REPOSITORY}:"
    )
    return list(yaml.safe_load_all(text))


def test_gpu_variant_changes_only_the_serving_pods() -> None:
    """production-gpu = production + 1 GPU, GPU nodes, the fp32 graph and the GPU image."""
    cpu_docs = render_overlay("production")
    gpu_docs = render_overlay("production-gpu")
    assert _without(cpu_docs, "Rollout", "HorizontalPodAutoscaler") == _without(
        _gpu_image_as_cpu(gpu_docs), "Rollout", "HorizontalPodAutoscaler"
    )

    cpu = one(cpu_docs, "Rollout")
    gpu = one(gpu_docs, "Rollout")
    (cpu_container,) = containers(cpu)
    (gpu_container,) = containers(gpu)
    assert _env(cpu_container)["TEXTCLF_ONNX_VARIANT"] == "int8"
    assert _env(gpu_container)["TEXTCLF_ONNX_VARIANT"] == "fp32"
    assert len(gpu_container["env"]) == len(cpu_container["env"])
    assert "nvidia.com/gpu" not in cpu_container["resources"]["limits"]
    assert str(gpu_container["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    gpu_pod = gpu["spec"]["template"]["spec"]
    assert gpu_pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu_pod[
        "tolerations"
    ]
    assert "nodeSelector" not in cpu["spec"]["template"]["spec"]
    repository, tag = cpu_container["image"].rsplit(":", 1)
    assert gpu_container["image"] == f"{repository}-gpu:{tag}", "the GPU image, same tag"


def test_staging_is_smaller_than_production() -> None:
    """Overlays set their own replica bounds and resources."""
    staging = render_overlay("staging")
    production = render_overlay("production")
    s_hpa = one(staging, "HorizontalPodAutoscaler")["spec"]
    p_hpa = one(production, "HorizontalPodAutoscaler")["spec"]
    assert s_hpa["minReplicas"] < p_hpa["minReplicas"]
    assert s_hpa["maxReplicas"] < p_hpa["maxReplicas"]
    assert p_hpa["minReplicas"] >= 2, "production must survive losing one pod"
    (s_container,) = containers(one(staging, "Rollout"))
    (p_container,) = containers(one(production, "Rollout"))
    assert s_container["resources"] != p_container["resources"]
