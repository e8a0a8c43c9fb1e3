"""What users and the release/rollback flows depend on in the rendered manifests."""

from __future__ import annotations

import copy
import fnmatch
import math
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    DEPLOY_DIR,
    DRIFT_ARGS,
    DRIFT_IMAGE_NAME,
    IMAGE_NAME,
    IMAGE_REPOSITORY,
    OVERLAYS,
    OVERLAYS_DIR,
    PUSHED_LABELS,
    PUSHGATEWAY_URL,
    REPO_URL,
    SERVICE_PORT,
    SNAPSHOTS_DIR,
    SNAPSHOTS_PVC,
    TRAFFIC_DIR,
    TRAFFIC_PVC,
    ConditionError,
    Manifest,
    by_kind,
    containers,
    evaluate_condition,
    kustomize_build,
    label_problems,
    load_yaml_documents,
    measurement_phase,
    one,
    pod_specs,
    query_metrics,
    render,
    render_overlay,
    rule_metrics,
    service_metrics,
    substitute_args,
    translate_condition,
)

ENVIRONMENTS = ("staging", "production")
WORKLOAD_KINDS = ("Rollout", "CronJob")
NAN = math.nan
INF = math.inf


def _workloads(docs: list[Manifest]) -> list[Manifest]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def _kustomization(overlay: str) -> dict[str, Any]:
    return yaml.safe_load((OVERLAYS_DIR / overlay / "kustomization.yaml").read_text("utf-8"))


def _resolve_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    by_name = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    return by_name[port]


# --------------------------------------------------------------------------- image


def _entries(overlay: str) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _kustomization(overlay)["images"]}


#: workload kind -> (kustomize image name, repository suffix) of its container.
WORKLOAD_IMAGES = {"Rollout": (IMAGE_NAME, ""), "CronJob": (DRIFT_IMAGE_NAME, "-drift")}


def test_production_pins_each_image_by_tag_and_release_managed_keys_only() -> None:
    """Production pins the service and the drift job: newName, newTag (and digest once pinned)."""
    entries = _entries("production")
    assert set(entries) == {IMAGE_NAME, DRIFT_IMAGE_NAME}
    for name, suffix in WORKLOAD_IMAGES.values():
        entry = entries[name]
        assert set(entry) <= {"name", "newName", "newTag", "digest"}
        assert entry["newName"] == IMAGE_REPOSITORY + suffix
        assert re.fullmatch(r"[md]-[0-9a-f]{12}", entry["newTag"])
        if "digest" in entry:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", entry["digest"])
    assert entries[IMAGE_NAME]["newTag"].startswith("m-")
    assert entries[DRIFT_IMAGE_NAME]["newTag"].startswith("d-")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_its_pinned_image(overlay: str) -> None:
    """The service runs the serving image, the CronJob the drift image: name:tag[@digest]."""
    production = _entries("production")
    gpu = _entries("production-gpu")[IMAGE_REPOSITORY] if overlay == "production-gpu" else None
    for workload in _workloads(render_overlay(overlay)):
        name, suffix = WORKLOAD_IMAGES[workload["kind"]]
        entry = _entries("staging" if overlay == "staging" else "production")[name]
        if gpu is not None and workload["kind"] == "Rollout":
            entry, suffix = {**production[name], **gpu}, "-gpu"
        assert entry["newName"] == IMAGE_REPOSITORY + suffix
        expected = f"{entry['newName']}:{entry['newTag']}"
        if entry.get("digest"):
            expected += f"@{entry['digest']}"
        for container in containers(workload):
            assert container["image"] == expected, f"{overlay} {workload['kind']}"


def test_gpu_overlay_pins_its_own_image() -> None:
    """production-gpu renames the serving repository and pins its own tag (and digest)."""
    (entry,) = _kustomization("production-gpu")["images"]
    assert entry["name"] == IMAGE_REPOSITORY and entry["newName"] == f"{IMAGE_REPOSITORY}-gpu"
    assert entry["newTag"] == _entries("production")[IMAGE_NAME]["newTag"]
    assert set(entry) <= {"name", "newName", "newTag", "digest"}


def test_the_pins_are_documented_as_release_managed() -> None:
    """The comment above production's images block names its writers."""
    text = (OVERLAYS_DIR / "production" / "kustomization.yaml").read_text("utf-8")
    head = text[: text.index("\nimages:")]
    assert "make release-manifests" in head and "make release-pin" in head
    assert "Never let image automation change them" in head


def test_staging_runs_the_released_images() -> None:
    """Staging pins the same images as production (`textclf release manifests` / `pin`)."""
    assert _entries("staging") == _entries("production")


# --------------------------------------------------------------------------- pod security


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_non_root_with_read_only_root(overlay: str) -> None:
    """Non-root uid 1034, no privilege escalation, no capabilities, RuntimeDefault seccomp."""
    docs = render_overlay(overlay)
    for account in by_kind(docs, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False
    for workload in _workloads(docs):
        for pod in pod_specs(workload):
            assert pod["automountServiceAccountToken"] is False
            pod_sc = pod["securityContext"]
            assert pod_sc["runAsNonRoot"] is True
            assert pod_sc["runAsUser"] == 1034 and pod_sc["runAsGroup"] == 1034
            assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
            for container in pod["containers"]:
                sc = container["securityContext"]
                assert sc["runAsNonRoot"] is True
                assert sc["allowPrivilegeEscalation"] is False
                assert sc["readOnlyRootFilesystem"] is True
                assert sc["capabilities"] == {"drop": ["ALL"]}
                assert sc.get("privileged", False) is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_writable_paths_are_volumes(overlay: str) -> None:
    """With a read-only root, /tmp and BENTOML_HOME are emptyDirs; traffic is the PVC."""
    for workload in _workloads(render_overlay(overlay)):
        for pod in pod_specs(workload):
            volumes = {v["name"]: v for v in pod["volumes"]}
            for container in pod["containers"]:
                mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
                env = _env(container)
                for path in ("/tmp", env.get("BENTOML_HOME", "/tmp")):
                    assert "emptyDir" in volumes[mounts[path]["name"]], path
                traffic = volumes[mounts[TRAFFIC_DIR]["name"]]
                assert traffic["persistentVolumeClaim"]["claimName"] == TRAFFIC_PVC


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    """CPU and memory requests and limits on every container."""
    for workload in _workloads(render_overlay(overlay)):
        for container in containers(workload):
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), container["name"]


@pytest.mark.parametrize("overlay", ENVIRONMENTS)
def test_namespace_enforces_restricted_pod_security(overlay: str) -> None:
    """The namespace refuses pods that would break the rules above."""
    labels = one(render_overlay(overlay), "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# --------------------------------------------------------------------------- serving contract


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_hit_readyz_and_livez_on_3000(overlay: str) -> None:
    """Readiness on /readyz, liveness (and startup) on /livez, all on port 3000."""
    docs = render_overlay(overlay)
    (container,) = containers(one(docs, "Rollout"))
    assert SERVICE_PORT in {p["containerPort"] for p in container["ports"]}
    expected = {"readinessProbe": "/readyz", "livenessProbe": "/livez", "startupProbe": "/livez"}
    for probe, path in expected.items():
        http = container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert _resolve_port(container, http["port"]) == SERVICE_PORT, probe
    service = one(docs, "Service")
    (port,) = service["spec"]["ports"]
    assert _resolve_port(container, port["targetPort"]) == SERVICE_PORT
    annotations = one(docs, "Rollout")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(SERVICE_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is False, "a pod must not override its target labels"
    assert not endpoint.get("metricRelabelings"), "the analysis reads exported_endpoint as is"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_traffic_is_recorded_on_the_shared_volume(overlay: str) -> None:
    """TEXTCLF_TRAFFIC_DIR points at the ReadWriteMany PVC textclf-traffic."""
    docs = render_overlay(overlay)
    (container,) = containers(one(docs, "Rollout"))
    assert _env(container)["TEXTCLF_TRAFFIC_DIR"] == TRAFFIC_DIR
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == TRAFFIC_DIR)
    assert not mount.get("readOnly", False)
    pvc = one(docs, "PersistentVolumeClaim", TRAFFIC_PVC)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_drift_cronjob_contract(overlay: str) -> None:
    """Daily `textclf drift-check` on the traffic PVC, read-only, never overlapping; it writes
    the window's snapshot to the snapshots PVC, its only writable volume but the emptyDirs."""
    docs = render_overlay(overlay)
    cron = one(docs, "CronJob")
    spec = cron["spec"]
    minute, hour, day, month, weekday = spec["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*")
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    (pod,) = pod_specs(cron)
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert "command" not in container, "the drift image's entrypoint is the check"
    assert container["args"] == DRIFT_ARGS
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == TRAFFIC_DIR)
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"] == {"claimName": TRAFFIC_PVC, "readOnly": True}
    # --snapshot-to names the writable mount of the snapshots claim (CI imports from it).
    args = container["args"]
    assert args.count("--snapshot-to") == 1
    prefix = args[args.index("--snapshot-to") + 1]
    assert prefix == SNAPSHOTS_DIR
    volumes = {v["name"]: v for v in pod["volumes"]}
    (snapshots,) = [m for m in container["volumeMounts"] if m["mountPath"] == prefix]
    assert snapshots.get("readOnly", False) is False
    claim = volumes[snapshots["name"]]["persistentVolumeClaim"]
    assert claim == {"claimName": SNAPSHOTS_PVC}, "a read-only claim would refuse the write"
    one(docs, "PersistentVolumeClaim", SNAPSHOTS_PVC)
    assert not prefix.startswith(TRAFFIC_DIR + "/") and not TRAFFIC_DIR.startswith(prefix + "/")
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    scratch = {m["mountPath"] for m in container["volumeMounts"]
               if "emptyDir" in volumes[m["name"]]}  # fmt: skip
    assert writable - scratch == {SNAPSHOTS_DIR}
    # Written as uid 1034; fsGroup gives that group the claim's files.
    assert pod["securityContext"]["fsGroup"] == 1034
    # Exit 1 (drift), 3 (degraded log) and 2 (cannot check) are verdicts: fail the Job at once,
    # no retries. 0 is ok or insufficient data: a quiet cluster pages no one.
    (fail_rule,) = [r for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert fail_rule["onExitCodes"] == {
        "containerName": container["name"],
        "operator": "In",
        "values": [1, 2, 3],
    }
    # The outcome goes to the Pushgateway, grouped by the pod's namespace.
    assert _env(container)["TEXTCLF_PUSHGATEWAY"] == PUSHGATEWAY_URL
    (namespace,) = [e for e in container["env"] if e["name"] == "POD_NAMESPACE"]
    assert namespace["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_claim_is_one_of_the_surviving_ones(overlay: str) -> None:
    """Each PersistentVolumeClaim rendered is checked below (a new one must be added there)."""
    claims = by_kind(render_overlay(overlay), "PersistentVolumeClaim")
    assert {c["metadata"]["name"] for c in claims} == {TRAFFIC_PVC, SNAPSHOTS_PVC}


@pytest.mark.parametrize("claim", [TRAFFIC_PVC, SNAPSHOTS_PVC])
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_traffic_claim_survives_prune_and_app_deletion(overlay: str, claim: str) -> None:
    """The recorded traffic and its snapshots outlive a sync, a prune and the app's deletion."""
    pvc = one(render_overlay(overlay), "PersistentVolumeClaim", claim)
    assert pvc["metadata"]["labels"]["app.kubernetes.io/name"] == "textclf"
    annotations = pvc["metadata"]["annotations"]
    options = set(annotations["argocd.argoproj.io/sync-options"].split(","))
    assert {"Prune=false", "Delete=false"} <= options
    assert annotations["kustomize.toolkit.fluxcd.io/prune"] == "disabled"


# --------------------------------------------------------------------------- network policy

DNS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def _is_dns_only(rules: list[dict[str, Any]]) -> bool:
    """Egress to the cluster DNS pods on port 53, nothing else."""
    return bool(rules) and all(
        rule.get("ports") == DNS
        and rule.get("to")
        and all(
            peer.get("namespaceSelector", {}).get("matchLabels")
            == {"kubernetes.io/metadata.name": "kube-system"}
            and peer.get("podSelector", {}).get("matchLabels") == {"k8s-app": "kube-dns"}
            and "ipBlock" not in peer
            for peer in rule["to"]
        )
        for rule in rules
    )


def _pushgateway_rule(url: str) -> dict[str, Any]:
    """The egress rule that lets a pod reach the Pushgateway Service at ``url``
    (``http://<service>.<namespace>.svc:<port>``): that port in that namespace."""
    parts = urllib.parse.urlsplit(url)
    namespace = (parts.hostname or "").split(".")[1]
    return {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}],
        "ports": [{"protocol": "TCP", "port": parts.port}],
    }


def network_problems(docs: list[Manifest]) -> list[str]:
    """What the namespace's NetworkPolicies let through beyond the intended paths."""
    policies = by_kind(docs, "NetworkPolicy")
    problems = []
    deny = [p for p in policies if p["spec"].get("podSelector") == {}]
    if len(deny) != 1 or set(deny[0]["spec"].get("policyTypes", [])) != {"Ingress", "Egress"}:
        problems.append("no default deny of ingress and egress for every pod")
    elif deny[0]["spec"].get("ingress") or deny[0]["spec"].get("egress"):
        problems.append("the default deny allows something")
    workloads = {"server": one(docs, "Rollout"), "drift-check": one(docs, "CronJob")}
    for component, workload in workloads.items():
        template = workload["spec"]
        if workload["kind"] == "CronJob":
            template = template["jobTemplate"]["spec"]
        labels = template["template"]["metadata"]["labels"]
        mine = [p for p in policies if p not in deny and _matches(p["spec"]["podSelector"], labels)]
        if len(mine) != 1:
            problems.append(f"{component}: {len(mine)} policies select its pods, expected 1")
            continue
        spec = mine[0]["spec"]
        if set(spec.get("policyTypes", [])) != {"Ingress", "Egress"}:
            problems.append(f"{component}: policyTypes must be Ingress and Egress")
        egress = spec.get("egress", [])
        env = {k: v for c in containers(workload) for k, v in _env(dict(c)).items()}
        if pushgateway := env.get("TEXTCLF_PUSHGATEWAY"):
            # The drift job pushes its verdict: that Service's port, nothing more.
            if _pushgateway_rule(pushgateway) not in egress:
                problems.append(f"{component}: no egress to the Pushgateway {pushgateway}")
            egress = [r for r in egress if r != _pushgateway_rule(pushgateway)]
        if not _is_dns_only(egress):
            problems.append(f"{component}: egress beyond cluster DNS")
        ingress = spec.get("ingress", [])
        if component == "drift-check" and ingress:
            problems.append("drift-check: accepts connections")
        for rule in ingress if component == "server" else []:
            peers = rule.get("from") or [{}]
            if rule.get("ports") != [{"protocol": "TCP", "port": SERVICE_PORT}]:
                problems.append(f"server: ingress on {rule.get('ports')}, not TCP {SERVICE_PORT}")
            if any(set(p) != {"namespaceSelector"} or not p["namespaceSelector"] for p in peers):
                problems.append("server: ingress from anywhere but named namespaces")
    return problems


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_allows_only_the_intended_paths(overlay: str) -> None:
    docs = render_overlay(overlay)
    assert network_problems(docs) == []
    server = one(docs, "NetworkPolicy", "textclf-server")["spec"]
    (rule,) = server["ingress"]
    (peer,) = rule["from"]
    (names,) = peer["namespaceSelector"]["matchExpressions"]
    assert names["key"] == "kubernetes.io/metadata.name" and names["operator"] == "In"
    assert "monitoring" in names["values"], "Prometheus must still scrape /metrics"


def _policy(docs: list[Manifest], name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name)


@pytest.mark.parametrize(
    ("break_it", "caught"),
    [
        (lambda d: _policy(d, "textclf-default-deny")["spec"].update(policyTypes=["Ingress"]),
         "no default deny"),
        (lambda d: _policy(d, "textclf-server")["spec"]["ingress"].append({}),
         "server: ingress on None"),
        (lambda d: _policy(d, "textclf-server")["spec"]["ingress"][0].pop("from"),
         "server: ingress from anywhere"),
        (lambda d: _policy(d, "textclf-server")["spec"]["egress"].append(
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}), "server: egress beyond cluster DNS"),
        (lambda d: _policy(d, "textclf-drift-check")["spec"].update(
            ingress=[{"from": [{"podSelector": {}}]}]), "drift-check: accepts connections"),
        (lambda d: d.remove(_policy(d, "textclf-drift-check")), "drift-check: 0 policies"),
        (lambda d: _policy(d, "textclf-drift-check")["spec"]["egress"].append(
            {"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": 9091}]}),
         "drift-check: egress beyond cluster DNS"),
        (lambda d: _policy(d, "textclf-drift-check")["spec"]["egress"].pop(),
         "drift-check: no egress to the Pushgateway"),
        (lambda d: _policy(d, "textclf-server")["spec"]["egress"].append(
            _pushgateway_rule(PUSHGATEWAY_URL)), "server: egress beyond cluster DNS"),
    ],
)  # fmt: skip
def test_the_network_check_catches_each_opening(break_it: Any, caught: str) -> None:
    assert_caught(network_problems, render_overlay("production"), break_it, caught)


def assert_caught(check: Any, docs: list[Manifest], break_it: Any, caught: str) -> None:
    """Negative control: ``check`` reports ``caught`` on a copy of ``docs`` that ``break_it``
    changed."""
    broken = copy.deepcopy(docs)
    break_it(broken)
    problems = check(broken)
    assert any(p.startswith(caught) for p in problems), problems


# --------------------------------------------------------------------------- alerts


def _alerts(overlay: str = "production") -> dict[str, dict[str, Any]]:
    rule = one(render_overlay(overlay), "PrometheusRule")
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_alerts_fire_on_failed_drift_jobs_5xx_and_shedding(overlay: str) -> None:
    docs = render_overlay(overlay)
    rule = one(docs, "PrometheusRule")
    monitor = one(docs, "ServiceMonitor")
    assert rule["metadata"]["labels"]["release"] == monitor["metadata"]["labels"]["release"]
    alerts = _alerts(overlay)
    assert {"TextclfDriftCheckFailed", "TextclfHigh5xxRate", "TextclfSheddingRequests"} <= set(
        alerts
    )
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name
        expr = alert["expr"]
        assert 'namespace=~"textclf-.+"' in expr and "by (namespace" in expr, name
        ours = re.findall(r"(?:bentoml|textclf)_\w+\{[^}]*\}", expr)
        scraped = [q for q in ours if not q.startswith("textclf_drift_")]
        assert label_problems(" ".join(scraped)) == [], name
        for query in (q for q in ours if q.startswith("textclf_drift_")):
            labels = {m[0] for m in re.findall(r'(\w+)\s*(=~|!=|!~|=)\s*"', query)}
            assert labels <= PUSHED_LABELS, (name, labels - PUSHED_LABELS)
    cron = one(docs, "CronJob")["metadata"]["name"]
    drift = alerts["TextclfDriftCheckFailed"]["expr"]
    assert f'job_name=~"{cron}-.+"' in drift and 'condition="true"' in drift
    assert 'http_response_code=~"5.."' in alerts["TextclfHigh5xxRate"]["expr"]
    assert "textclf_shed_requests_total" in alerts["TextclfSheddingRequests"]["expr"]


def test_the_alerts_read_metrics_the_service_defines() -> None:
    """Every textclf_* counter a rule reads is one the service registers. (BentoML's
    multiprocess metrics expose a counter only once it moved, so a scrape cannot show them.)"""
    source = (DEPLOY_DIR.parent / "src" / "textclf" / "serving" / "service.py").read_text()
    defined = {f"{n}_total" for n in re.findall(r'Counter\(\s*name="(textclf_\w+)"', source)}
    # ... or a gauge the drift job pushes to the Pushgateway.
    drift = (DEPLOY_DIR.parent / "src" / "textclf" / "monitoring" / "check.py").read_text()
    pushed = set(re.findall(r'Gauge\(\s*"(textclf_\w+)"', drift))
    assert len(pushed) == 4, pushed
    used = rule_metrics()
    assert used and used <= defined | pushed, used - defined - pushed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_drift_job_alerts_read_its_pushed_outcome(overlay: str) -> None:
    """Quiet for 3 days is info, no report for 2 days a warning; verdicts are drift-check's."""
    from textclf.monitoring.check import EXIT_CODES

    alerts = _alerts(overlay)
    quiet, stale = alerts["TextclfDriftCheckInsufficientData"], alerts["TextclfDriftCheckStale"]
    assert quiet["labels"]["severity"] == "info" and quiet["for"] == "3d"
    query = 'textclf_drift_verdict{namespace=~"textclf-.+", verdict="insufficient-data"}'
    assert query in quiet["expr"]
    assert quiet["expr"].rstrip().endswith("== 1")
    assert stale["labels"]["severity"] == "warning"
    assert "time() - max by (namespace) (textclf_drift_last_run_timestamp_seconds" in stale["expr"]
    assert stale["expr"].rstrip().endswith("> 2 * 86400")
    verdicts = {v for a in alerts.values() for v in re.findall(r'verdict="([^"]+)"', a["expr"])}
    assert verdicts and verdicts <= set(EXIT_CODES)


def test_a_rollback_within_the_window_skips_the_canary() -> None:
    spec = one(render_overlay("production"), "Rollout")["spec"]
    assert 1 <= spec["rollbackWindow"]["revisions"] <= spec["revisionHistoryLimit"]


# --------------------------------------------------------------------------- canary + analysis


def _analysis_template(overlay: str = "production") -> Manifest:
    return one(render_overlay(overlay), "AnalysisTemplate", "textclf-canary")


def _template_args(template: Manifest, **values: str) -> dict[str, str]:
    args = {a["name"]: a["value"] for a in template["spec"]["args"] if "value" in a}
    args.update(values)
    return args


def test_canary_steps_gate_each_weight_on_analysis() -> None:
    """20% -> pause -> analysis -> 50% -> pause -> analysis -> 100%."""
    rollout = one(render_overlay("production"), "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    assert "trafficRouting" not in canary, "replica-based canary behind one Service"
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [20, 50, 100]
    kinds = [next(iter(s)) for s in steps]
    assert kinds == [
        "setWeight",
        "pause",
        "analysis",
        "setWeight",
        "pause",
        "analysis",
        "setWeight",
    ]
    for step in steps:
        if "analysis" in step:
            assert [t["templateName"] for t in step["analysis"]["templates"]] == ["textclf-canary"]
            args = {a["name"]: a for a in step["analysis"]["args"]}
            assert args["canary-hash"]["valueFrom"] == {"podTemplateHashValue": "Latest"}
            assert args["namespace"]["valueFrom"] == {
                "fieldRef": {"fieldPath": "metadata.namespace"}
            }
            assert args["service-name"]["value"] == "textclf"
    assert rollout["spec"]["progressDeadlineAbort"] is True


#: The metrics on BentoML's request metrics, and the one on the service's feedback counter.
REQUEST_METRICS = ("error-rate", "p95-latency")
LIVE_ACCURACY = "live-accuracy"
#: How every query selects the canary's pods (pod names <rollout>-<pod-template-hash>-<suffix>).
CANARY_PODS = 'pod=~".+-{{args.canary-hash}}-.+"'


def _metrics(overlay: str = "production") -> dict[str, Manifest]:
    return {m["name"]: m for m in _analysis_template(overlay)["spec"]["metrics"]}


def _query(metric: Manifest) -> str:
    return str(metric["provider"]["prometheus"]["query"])


def test_analysis_queries_read_bentoml_metrics_of_the_canary() -> None:
    """Error rate and p95 latency from BentoML's metrics, canary pods of this service only;
    live accuracy from the service's feedback counter (test_live_accuracy_* below)."""
    template = _analysis_template()
    metrics = _metrics()
    assert set(metrics) == {*REQUEST_METRICS, LIVE_ACCURACY}
    declared = {a["name"] for a in template["spec"]["args"]}
    assert {"service-name", "namespace", "canary-hash"} <= declared
    for metric in metrics.values():
        used = set(re.findall(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}", str(metric)))
        assert used <= declared, f"undeclared args {used - declared}"
        query = _query(metric)
        assert 'namespace="{{args.namespace}}"' in query
        assert CANARY_PODS in query
        assert label_problems(query) == [], metric["name"]
    for metric in (metrics[name] for name in REQUEST_METRICS):
        query = _query(metric)
        assert 'service_name="{{args.service-name}}"' in query
        assert 'exported_endpoint="/predict"' in query
        # The floor: nothing (Inconclusive) while the canary serves too few requests to judge.
        judged, sep, floor = query.rpartition("and on()")
        assert sep, "no request-rate floor"
        counted, _, minimum = floor.strip().rpartition(" >= ")
        assert minimum == "{{args.min-request-rate}}"
        name = "sum(rate(bentoml_service_request_total"
        assert counted.startswith(name) and counted.endswith("[2m]))"), counted
        assert counted[len(name) : -len("[2m]))")] in judged, "it counts the judged requests"
        assert query_metrics(query) <= {
            "bentoml_service_request_total",
            "bentoml_service_request_duration_seconds_bucket",
        }
    error_query = _query(metrics["error-rate"])
    assert error_query.count("bentoml_service_request_total") == 3
    assert 'http_response_code=~"5.."' in error_query
    assert "or vector(0)" in error_query, "zero 5xx must read as 0, not as no data"
    latency_query = _query(metrics["p95-latency"])
    assert "histogram_quantile(0.95" in latency_query
    assert "bentoml_service_request_duration_seconds_bucket" in latency_query
    assert "by (le)" in latency_query
    for metric in metrics.values():
        resolved = substitute_args(
            _query(metric),
            _template_args(template, namespace="textclf-production", **{"canary-hash": "abc"}),
        )
        assert "{{" not in resolved


# --------------------------------------------------------------------------- live accuracy

_MATCHERS = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!=|!~|=)\s*"([^"]*)"')
#: sum(increase(<feedback>[window]) and on(model_version) <predictions of the canary pods>):
#: the join keeps each feedback series of a model version the canary predicts with, and the
#: sum comes after it (summed first, the model_version label is gone and nothing joins).
_JOINED_FEEDBACK = (
    r'sum\(\s*increase\(textclf_feedback_total\{(?P<feedback%(n)s>(?:[^{}"]|"[^"]*")*)\}'
    r"\[\{\{args\.live-accuracy-window\}\}\]\)\s+and on\(model_version\)\s+"
    r'textclf_predictions_total\{(?P<canary%(n)s>(?:[^{}"]|"[^"]*")*)\}\s*\)'
)
_NAMESPACE = ("namespace", "=", "{{args.namespace}}")
_CANARY_MATCHERS = {_NAMESPACE, ("pod", "=~", ".+-{{args.canary-hash}}-.+")}
CORRECT = ("correct", "=", "true")


def _matchers(body: str) -> set[tuple[str, str, str]]:
    return set(_MATCHERS.findall(body))


def _unwrap(expr: str) -> str:
    """``expr`` without one pair of parentheses around all of it, if it has them."""
    if not (expr.startswith("(") and expr.endswith(")")):
        return expr
    depth = 0
    for i, char in enumerate(expr):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and i < len(expr) - 1:
            return expr  # "(a) / (b)": the first parenthesis closes early
    return expr[1:-1].strip()


def live_accuracy_problems(query: str) -> list[str]:
    """What is wrong with a live-accuracy query, read as
    ``((correct or vector(0)) / all and on() all >= min-feedback) or on() vector(-1)``, where
    ``all`` is the canary model versions' feedback in the window and ``correct`` the same
    restricted to correct="true"."""
    q = " ".join(query.split())
    body, sep, fallback = q.rpartition(" or on() ")
    if not sep or fallback != "vector(-1)":
        return ["no `or on() vector(-1)`: too little feedback must read -1, not nothing"]
    judged, sep, floor = _unwrap(body).rpartition(" and on() ")
    counted, _, minimum = floor.rpartition(" >= ")
    if not sep or minimum != "{{args.min-feedback}}":
        return ["no floor `and on() <feedback> >= {{args.min-feedback}}`"]
    numerator, sep, denominator = judged.partition(" / ")
    all_feedback = re.fullmatch(_JOINED_FEEDBACK % {"n": ""}, denominator)
    problems = []
    if not sep or all_feedback is None:
        return ["the denominator is not sum(increase(feedback) and on(model_version) canary)"]
    if counted != denominator:
        problems.append("the floor does not count the feedback it judges")
    feedback = _matchers(all_feedback["feedback"])
    if feedback != {_NAMESPACE}:
        problems.append(f"feedback selected by {sorted(feedback - {_NAMESPACE})}: feedback "
                        "reaches stable pods too; select it by model_version only")  # fmt: skip
    if _matchers(all_feedback["canary"]) != _CANARY_MATCHERS:
        problems.append("the model versions are not those of the canary pods' predictions")
    correct = re.fullmatch(
        r"\(\s*" + _JOINED_FEEDBACK % {"n": ""} + r"\s+or vector\(0\)\s*\)", numerator
    )
    if correct is None:
        problems.append("the numerator is not (sum(...correct...) or vector(0)): zero correct "
                        "must read 0")  # fmt: skip
    else:
        same_canary = _matchers(correct["canary"]) == _matchers(all_feedback["canary"])
        if _matchers(correct["feedback"]) != feedback | {CORRECT} or not same_canary:
            problems.append('the numerator is not the denominator restricted to correct="true"')
    return problems


def _live_accuracy() -> tuple[Manifest, Manifest]:
    template = _analysis_template()
    return template, _metrics()[LIVE_ACCURACY]


def test_live_accuracy_query_reads_the_canary_model_versions_feedback() -> None:
    """Correct share of textclf_feedback_total for the model versions the canary pods predict
    with (feedback may reach a stable pod: selected by model_version, never by pod); -1 below
    min-feedback items in the window."""
    template, metric = _live_accuracy()
    query = _query(metric)
    assert live_accuracy_problems(query) == []
    assert query.count("textclf_feedback_total") == 3
    assert query.count('correct="true"') == 1
    assert query.count("and on(model_version)") == 3
    assert " ".join(query.split()).endswith("or on() vector(-1)")
    # Counters the service registers, matched on their own labels and the target labels.
    read = query_metrics(query)
    assert read == {"textclf_feedback_total", "textclf_predictions_total"}
    assert read <= set(service_metrics())
    assert {"correct", "model_version"} <= service_metrics()["textclf_feedback_total"]
    assert "model_version" in service_metrics()["textclf_predictions_total"]
    assert label_problems(query) == []
    # The canary pods are the request metrics' canary pods.
    for name in REQUEST_METRICS:
        assert CANARY_PODS in _query(_metrics()[name])
    defaults = _template_args(template)
    assert defaults["min-live-accuracy"] == "0", "off by default: overlays raise it"
    assert int(defaults["min-feedback"]) >= 1, "at 0 an empty window is 0/0 = NaN"
    assert re.fullmatch(r"[0-9]+[smh]", defaults["live-accuracy-window"])
    # Measured like the others: the analysis step takes no longer for it.
    for name in REQUEST_METRICS:
        other = _metrics()[name]
        for key in ("interval", "count", "failureLimit", "inconclusiveLimit"):
            assert metric[key] == other[key], key


def test_the_template_documents_minus_one() -> None:
    text = (DEPLOY_DIR / "base" / "analysistemplate.yaml").read_text("utf-8")
    assert "-1 = too little feedback to judge" in text


def _without(query: str, old: str, new: str = "") -> str:
    normalized = " ".join(query.split())
    assert old in normalized, old
    return normalized.replace(old, new)


@pytest.mark.parametrize(
    ("break_it", "caught"),
    [
        # sum first, then the join: sum() drops model_version, so nothing ever joins (-1).
        (lambda q: _without(_without(q, "]) and on(model_version) ",
                                     "])) and on(model_version) "), '.+"} )', '.+"}'),
         "the denominator is not"),
        (lambda q: _without(q, " or on() vector(-1)"), "no `or on() vector(-1)`"),
        (lambda q: _without(q, " >= {{args.min-feedback}}"), "no floor"),
        (lambda q: _without(q, ', correct="true"'), "the numerator is not the denominator"),
        (lambda q: _without(q, " or vector(0)"), "the numerator is not (sum"),
        (lambda q: _without(q, 'textclf_feedback_total{namespace="{{args.namespace}}"',
                            'textclf_feedback_total{namespace="{{args.namespace}}", '
                            + CANARY_PODS), "feedback selected by"),
        (lambda q: _without(q, ', pod=~".+-{{args.canary-hash}}-.+"'),
         "the model versions are not"),
    ],
)  # fmt: skip
def test_the_live_accuracy_check_catches_each_mistake(break_it: Any, caught: str) -> None:
    """Negative controls of live_accuracy_problems."""
    broken = break_it(_query(_live_accuracy()[1]))
    problems = live_accuracy_problems(broken)
    assert any(p.startswith(caught) for p in problems), problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_live_accuracy_measurements(overlay: str) -> None:
    """-1 (too little feedback) passes and says so; with enough feedback, accuracy below a
    raised min-live-accuracy fails; no data or NaN is Inconclusive like the others."""
    template = _analysis_template(overlay)
    metric = _metrics(overlay)[LIVE_ACCURACY]
    args = _template_args(template, namespace="textclf-production", **{"canary-hash": "abc"})
    assert 0 <= float(args["min-live-accuracy"]) <= 1
    raised = {**args, "min-live-accuracy": "0.8"}
    for minimum in ({**args, "min-live-accuracy": "0"}, raised):
        assert measurement_phase(metric, [-1.0], minimum) == "Successful"
        assert measurement_phase(metric, [0.93], minimum) == "Successful"
        assert measurement_phase(metric, [], minimum) == "Inconclusive"
        assert measurement_phase(metric, [NAN], minimum) == "Inconclusive"
    # Off ("0"): every accuracy passes and is only recorded.
    assert measurement_phase(metric, [0.0], {**args, "min-live-accuracy": "0"}) == "Successful"
    assert measurement_phase(metric, [0.5], raised) == "Failed"
    assert measurement_phase(metric, [0.0], raised) == "Failed"
    assert measurement_phase(metric, [0.8], raised) == "Successful"
    assert int(metric["inconclusiveLimit"]) < int(metric["count"]) // 2
    assert int(metric["failureLimit"]) < int(metric["count"]) // 2


def test_without_the_minus_one_branch_little_feedback_would_fail() -> None:
    """Negative control: conditions that only compare with the minimum fail the -1 of "too
    little feedback" once the minimum is raised (and even at "0"), aborting every canary."""
    template, metric = _live_accuracy()
    args = _template_args(template, namespace="textclf-production", **{"canary-hash": "abc"})
    naive = {
        **metric,
        "successCondition": "len(result) > 0 && !isNaN(result[0]) && "
        "result[0] >= {{args.min-live-accuracy}}",
        "failureCondition": "len(result) > 0 && !isNaN(result[0]) && "
        "result[0] < {{args.min-live-accuracy}}",
    }
    raised = {**args, "min-live-accuracy": "0.8"}
    assert measurement_phase(naive, [-1.0], raised) == "Failed"
    assert measurement_phase(naive, [-1.0], args) == "Failed"
    assert measurement_phase(metric, [-1.0], raised) == "Successful"
    # Only the -1 branch differs: real accuracies are judged the same.
    for value in (0.5, 0.8, 0.93):
        assert measurement_phase(naive, [value], raised) == measurement_phase(
            metric, [value], raised
        )


def _readme_overlay_patch() -> list[dict[str, Any]]:
    """The kustomize `patches:` block deploy/README.md gives to turn live accuracy on."""
    text = (DEPLOY_DIR / "README.md").read_text("utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, flags=re.M | re.S)
    (block,) = [b for b in blocks if "min-live-accuracy" in b]
    return list(yaml.safe_load(block)["patches"])


def test_the_documented_overlay_patch_turns_live_accuracy_on(tmp_path: Path) -> None:
    """deploy/README.md's patch, applied to production, raises min-live-accuracy and keeps the
    rest of the template; a low accuracy then fails the canary."""
    patches = _readme_overlay_patch()
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes no absolute resource path: relative to the temporary overlay.
        "resources": [os.path.relpath(OVERLAYS_DIR / "production", tmp_path)],
        "patches": patches,
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), "utf-8")
    patched = one(kustomize_build(tmp_path), "AnalysisTemplate", "textclf-canary")
    before = _analysis_template()
    args = _template_args(patched, namespace="textclf-production", **{"canary-hash": "abc"})
    minimum = float(args["min-live-accuracy"])
    assert 0 < minimum <= 1
    assert {**_template_args(before), "min-live-accuracy": args["min-live-accuracy"]} == (
        _template_args(patched)
    )
    assert patched["spec"]["metrics"] == before["spec"]["metrics"]
    metric = next(m for m in patched["spec"]["metrics"] if m["name"] == LIVE_ACCURACY)
    assert measurement_phase(metric, [minimum / 2], args) == "Failed"
    assert measurement_phase(metric, [-1.0], args) == "Successful"


def test_the_label_check_catches_a_route_matched_on_the_target_label() -> None:
    """Negative control: with honorLabels off, `endpoint` is the port name, never "/predict"."""
    before = (
        'sum(rate(bentoml_service_request_total{service_name="textclf", endpoint="/predict"}[2m]))'
    )
    assert label_problems(before) == [
        'bentoml_service_request_total: endpoint="/predict" matches the target label '
        "(the port name); BentoML's route is exported_endpoint"
    ]
    assert label_problems('up{instance_name="x"}') == [
        "up: no label instance_name after the scrape"
    ]
    # The service's own metrics are checked on their own labels, past templated values.
    canary = 'namespace="{{args.namespace}}", pod=~".+-{{args.canary-hash}}-.+"'
    assert label_problems(f'textclf_feedback_total{{{canary}, model_version="v", correct="true"}}'
                          ) == []  # fmt: skip
    assert label_problems(f'textclf_predictions_total{{{canary}, service_name="textclf"}}') == [
        "textclf_predictions_total: no label service_name after the scrape"
    ]
    assert label_problems(f'textclf_predictions_total{{{canary}, correct="true"}}') == [
        "textclf_predictions_total: no label correct after the scrape"
    ]
    assert label_problems('textclf_feedbacks_total{namespace="x"}') == [
        "textclf_feedbacks_total: not a metric the service defines"
    ]
    assert label_problems(f'bentoml_service_request_total{{{canary}, endpoint="/predict"}}') == [
        'bentoml_service_request_total: endpoint="/predict" matches the target label '
        "(the port name); BentoML's route is exported_endpoint"
    ]


@pytest.mark.parametrize("metric_name", [*REQUEST_METRICS, LIVE_ACCURACY])
def test_analysis_conditions_require_data(metric_name: str) -> None:
    """Both conditions of each metric start with an explicit data check before comparing."""
    template = _analysis_template()
    metric = next(m for m in template["spec"]["metrics"] if m["name"] == metric_name)
    args = _template_args(template, namespace="textclf-production", **{"canary-hash": "abc"})
    for field in ("successCondition", "failureCondition"):
        condition = " ".join(metric[field].split())
        assert condition.startswith("len(result) > 0 && !isNaN(result[0]) && "), field
        # Parseable by the Python model of Argo's expression language once args resolve.
        translate_condition(substitute_args(condition, args))


@pytest.mark.parametrize(
    ("metric_name", "good", "bad"), [("error-rate", 0.001, 0.2), ("p95-latency", 0.05, 3.0)]
)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_analysis_measurements(overlay: str, metric_name: str, good: float, bad: float) -> None:
    """Evaluate the conditions like Argo: no data or NaN is never a success."""
    template = _analysis_template(overlay)
    metric = next(m for m in template["spec"]["metrics"] if m["name"] == metric_name)
    args = _template_args(template, namespace="textclf-production", **{"canary-hash": "abc"})
    assert measurement_phase(metric, [good], args) == "Successful"
    assert measurement_phase(metric, [bad], args) == "Failed"
    assert measurement_phase(metric, [INF], args) == "Failed"
    assert measurement_phase(metric, [], args) == "Inconclusive"
    assert measurement_phase(metric, [NAN], args) == "Inconclusive"
    # Inconclusive measurements are bounded: more than the limit pauses the Rollout.
    assert int(metric["inconclusiveLimit"]) < int(metric["count"]) // 2
    assert int(metric["failureLimit"]) < int(metric["count"]) // 2


def test_condition_model_matches_argo_semantics() -> None:
    """The Python model of Argo's expression language behaves as documented."""
    assert measurement_phase({"successCondition": "result[0] >= 0.95"}, [NAN], {}) == "Failed"
    assert measurement_phase({"failureCondition": "result[0] > 1"}, [0.5], {}) == "Successful"
    assert measurement_phase({}, [], {}) == "Successful"
    assert measurement_phase({"successCondition": "result[0] > 1"}, [], {}) == "Error"
    assert evaluate_condition("len(result) == 0 || !(result[0] > 1)", []) is True
    assert evaluate_condition("!isNaN(result[0]) && true", [1.0]) is True
    for unsupported in ("result[0] > x", "__import__('os')", "!result[0] > 1", "a.b", "len(result"):
        with pytest.raises((ValueError, SyntaxError)):
            translate_condition(unsupported)
    with pytest.raises(ConditionError):
        evaluate_condition("result[0] > 1", [])


# --------------------------------------------------------------------------- GitOps


def _applications() -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in render("argocd") if d["kind"] == "Application"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_argocd_application(env: str) -> None:
    """Automated prune + selfHeal from main, pointing at an existing overlay."""
    app = _applications()[f"textclf-{env}"]
    spec = app["spec"]
    source = spec["source"]
    assert source["repoURL"] == REPO_URL
    assert source["targetRevision"] == "main"
    assert source["path"] == f"deploy/overlays/{env}"
    assert (DEPLOY_DIR.parent / source["path"] / "kustomization.yaml").is_file()
    automated = spec["syncPolicy"]["automated"]
    assert automated["prune"] is True and automated["selfHeal"] is True
    assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"]
    namespace = one(render_overlay(env), "Namespace")["metadata"]["name"]
    assert spec["destination"]["namespace"] == namespace
    annotations = app["metadata"].get("annotations", {})
    assert not any("image-updater" in key for key in annotations)


def _group(doc: Manifest) -> str:
    return str(doc["apiVersion"]).rpartition("/")[0]


def project_problems(project: Manifest, docs: list[Manifest], namespace: str) -> list[str]:
    """What an overlay renders that the Argo CD project would refuse to sync."""
    spec = project["spec"]
    problems = []
    if not any(fnmatch.fnmatchcase(namespace, d["namespace"]) for d in spec["destinations"]):
        problems.append(f"namespace {namespace} is not a destination of the project")
    cluster = {(e["group"], e["kind"]) for e in spec.get("clusterResourceWhitelist", [])}
    namespaced = {(e["group"], e["kind"]) for e in spec["namespaceResourceWhitelist"]}
    for doc in docs:
        key = (_group(doc), doc["kind"])
        allowed = namespaced if doc["metadata"].get("namespace") else cluster
        if key not in allowed:
            where = "namespaced" if doc["metadata"].get("namespace") else "cluster-scoped"
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {where} {key} not allowed")
    return problems


def _project() -> Manifest:
    return one(render("argocd"), "AppProject", "textclf")


def test_the_argocd_project_admits_exactly_what_the_overlays_render() -> None:
    project = _project()
    spec = project["spec"]
    assert spec["sourceRepos"] == [REPO_URL]
    assert [d["namespace"] for d in spec["destinations"]] == ["textclf-*"]
    assert spec["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    for overlay in OVERLAYS:
        docs = render_overlay(overlay)
        namespace = one(docs, "Namespace")["metadata"]["name"]
        assert project_problems(project, docs, namespace) == [], overlay
    listed = {(e["group"], e["kind"]) for e in spec["namespaceResourceWhitelist"]}
    assert listed == _rendered_kinds(), "list exactly the kinds the overlays use"
    for env in ENVIRONMENTS:
        assert _applications()[f"textclf-{env}"]["spec"]["project"] == "textclf"


def test_the_project_check_catches_what_argocd_would_refuse() -> None:
    project = _project()
    docs = copy.deepcopy(render_overlay("production"))
    docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "pwn"}})  # fmt: skip
    docs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "miner", "namespace": "textclf-production"}})  # fmt: skip
    assert project_problems(project, docs, "kube-system") == [
        "namespace kube-system is not a destination of the project",
        "ClusterRoleBinding/pwn: cluster-scoped ('rbac.authorization.k8s.io', "
        "'ClusterRoleBinding') not allowed",
        "Deployment/miner: namespaced ('apps', 'Deployment') not allowed",
    ]


def test_argocd_covers_each_environment_once() -> None:
    """One Application per environment."""
    assert set(_applications()) == {f"textclf-{env}" for env in ENVIRONMENTS}


def test_flux_alternative() -> None:
    """One GitRepository on main and one pruning Kustomization per existing overlay."""
    docs = render("flux")
    repo = one(docs, "GitRepository")
    assert repo["spec"]["url"] == REPO_URL
    assert repo["spec"]["ref"] == {"branch": "main"}
    kustomizations = {d["metadata"]["name"]: d for d in by_kind(docs, "Kustomization")}
    assert set(kustomizations) == {f"textclf-{env}" for env in ENVIRONMENTS}
    for env in ENVIRONMENTS:
        spec = kustomizations[f"textclf-{env}"]["spec"]
        assert spec["prune"] is True
        assert spec["path"].removeprefix("./") == f"deploy/overlays/{env}"
        assert (DEPLOY_DIR.parent / spec["path"] / "kustomization.yaml").is_file()
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": repo["metadata"]["name"]}
        assert (
            repo["metadata"]["namespace"]
            == kustomizations[f"textclf-{env}"]["metadata"]["namespace"]
        )
        assert "images" not in spec, "the tag comes from the overlay, i.e. from git"


def _rendered_kinds() -> set[tuple[str, str]]:
    """(API group, kind) of every namespaced object any overlay renders."""
    return {
        (_group(d), d["kind"])
        for overlay in OVERLAYS
        for d in render_overlay(overlay)
        if d["metadata"].get("namespace")
    }


def _plural(kind: str) -> str:
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


def flux_problems(docs: list[Manifest]) -> list[str]:
    """Rights of Flux's deployer beyond applying the rendered kinds in the textclf namespaces."""
    problems = []
    kustomizations = by_kind(docs, "Kustomization")
    accounts = {k["spec"].get("serviceAccountName") for k in kustomizations}
    if None in accounts or len(accounts) != 1:
        problems.append("every Kustomization must impersonate the one deployer account")
        return problems
    (account,) = accounts
    subject = {"kind": "ServiceAccount", "name": account, "namespace": "flux-system"}
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for binding in by_kind(docs, kind):
            if subject not in binding.get("subjects", []):
                continue
            where = binding["metadata"].get("namespace")
            if kind == "ClusterRoleBinding" or not str(where).startswith("textclf-"):
                problems.append(f"{kind}/{binding['metadata']['name']} grants {account} rights "
                                f"outside the textclf namespaces")  # fmt: skip
    targets = {k["spec"].get("targetNamespace") for k in kustomizations}
    bound = {b["metadata"].get("namespace") for b in by_kind(docs, "RoleBinding")}
    if not targets <= bound:
        problems.append(f"no RoleBinding in {sorted(map(str, targets - bound))}")
    granted = set()
    for role in by_kind(docs, "ClusterRole"):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                granted |= {(group, r) for r in rule["resources"]}
            if "*" in rule["verbs"] or "escalate" in rule["verbs"] or "bind" in rule["verbs"]:
                problems.append(f"ClusterRole/{role['metadata']['name']}: verbs {rule['verbs']}")
    wanted = {(group, _plural(kind)) for group, kind in _rendered_kinds()}
    if granted != wanted:
        problems.append(f"grants {sorted(granted - wanted)}, lacks {sorted(wanted - granted)}")
    return problems


def test_flux_applies_with_a_namespace_scoped_account() -> None:
    docs = render("flux")
    assert flux_problems(docs) == []
    for env in ENVIRONMENTS:
        spec = one(docs, "Kustomization", f"textclf-{env}")["spec"]
        namespace = one(render_overlay(env), "Namespace")["metadata"]["name"]
        assert spec["targetNamespace"] == namespace
        (patch,) = spec["patches"]
        assert patch["target"] == {"kind": "Namespace"} and "$patch: delete" in patch["patch"]
        # The bootstrap creates the namespace the overlay would have, labels and all.
        bootstrap = one(docs, "Namespace", namespace)
        assert (
            bootstrap["metadata"]["labels"]
            == one(render_overlay(env), "Namespace")["metadata"]["labels"]
        )


@pytest.mark.parametrize(
    ("break_it", "caught"),
    [
        (lambda d: d.append({"kind": "ClusterRoleBinding", "metadata": {"name": "x"},
                             "subjects": [{"kind": "ServiceAccount", "name": "textclf-deployer",
                                           "namespace": "flux-system"}]}),
         "ClusterRoleBinding/x grants"),
        (lambda d: one(d, "ClusterRole")["rules"].append(
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"],
             "verbs": ["create"]}), "grants [('rbac.authorization.k8s.io', 'rolebindings')]"),
        (lambda d: one(d, "ClusterRole")["rules"][0].update(verbs=["*"]), "ClusterRole/"),
        (lambda d: one(d, "Kustomization", "textclf-staging")["spec"].pop("serviceAccountName"),
         "every Kustomization"),
    ],
)  # fmt: skip
def test_the_flux_check_catches_each_widening(break_it: Any, caught: str) -> None:
    assert_caught(flux_problems, render("flux"), break_it, caught)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_is_never_pruned_or_deleted_with_the_app(overlay: str) -> None:
    """Deleting the namespace would delete the traffic claim with it."""
    annotations = one(render_overlay(overlay), "Namespace")["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
    assert annotations["kustomize.toolkit.fluxcd.io/prune"] == "disabled"


def test_no_image_automation_anywhere_in_deploy() -> None:
    """Rollback is `git revert`: no bot may own the tag (no Flux image automation)."""
    forbidden = re.compile(r"\$imagepolicy|ImageUpdateAutomation", re.IGNORECASE)
    checked = 0
    for path in sorted(p for p in DEPLOY_DIR.rglob("*") if p.is_file()):
        text = path.read_text("utf-8")
        assert not forbidden.search(text), f"image automation marker in {path}"
        if path.suffix in {".yaml", ".yml"}:
            for doc in load_yaml_documents(path):
                assert not str(doc.get("apiVersion", "")).startswith("image.toolkit.fluxcd.io")
        checked += 1
    assert checked > 10


def test_readme_documents_render_and_rollback() -> None:
    """deploy/README.md tells how to render, bootstrap and roll back."""
    text = (DEPLOY_DIR / "README.md").read_text("utf-8")
    for needle in (
        "kubectl kustomize deploy/overlays/production",
        "git revert",
        "deploy/argocd",
        "deploy/flux",
        "make release-manifests",
    ):
        assert needle in text, needle
