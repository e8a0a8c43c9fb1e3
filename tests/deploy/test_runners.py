"""The review's self-hosted GPU runners (deploy/runners/): chart values, pod template, docs.

``values.yaml`` is for the gha-runner-scale-set chart; there is no helm here, so the values are
checked three ways: against a hand-written JSON schema of the subset this project relies on,
the pod template as a core ``PodTemplate`` with kubernetes-validate (strict), and the safety
properties in plain Python. Each check has negative controls that prove it can fail.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from .conftest import DEPLOY_DIR, K8S_VERSION, SCHEMA_DIR, Manifest, iter_paths, load_yaml_documents

RUNNERS_DIR = DEPLOY_DIR / "runners"
VALUES_FILE = RUNNERS_DIR / "values.yaml"
NAMESPACE_FILE = RUNNERS_DIR / "namespace.yaml"
README_FILE = RUNNERS_DIR / "README.md"
VALUES_SCHEMA_FILE = SCHEMA_DIR / "gha-runner-scale-set-values.json"

CHART_VERSION = "0.14.2"
CHART = "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set"
SCALE_SET_NAME = "textclf-gpu"  # what the review job's `runs-on:` names
RUNNER_GROUP = "textclf-review"
SELECTED_WORKFLOW = ".github/workflows/review.yml@refs/heads/main"
RUNNER_COMMAND = ["/home/runner/run.sh"]
WORK_DIR = "/home/runner/_work"
GPU = "nvidia.com/gpu"
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATION = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
MAX_RUNNERS_BOUND = 10

#: A key that names a credential; with a literal value it means the credential is inlined.
CREDENTIAL_KEY = re.compile(r"private_key|token|password", re.IGNORECASE)
#: Credential material itself (PEM keys, GitHub token formats), wherever it appears.
CREDENTIAL_TEXT = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bgh[opsru]_[A-Za-z0-9]{20,}|\bgithub_pat_\w{20,}"
)
DOCKER = re.compile(r"docker\.sock|dind|DOCKER_HOST|(^|/)docker(:|@|$)", re.IGNORECASE)
#: Volume types the `restricted` Pod Security Standard admits.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
#: Options of `cml runner launch` in CML v0.20.6 (bin/cml/runner/launch.js, hidden ones left out)
#: and CML's global options (bin/cml.js).
CML_LAUNCH_FLAGS = {
    "labels",
    "idle-timeout",
    "name",
    "no-retry",
    "single",
    "reuse",
    "reuse-idle",
    "docker-volumes",
    "cloud",
    "cloud-region",
    "cloud-type",
    "cloud-permission-set",
    "cloud-metadata",
    "cloud-gpu",
    "cloud-hdd-size",
    "cloud-ssh-private",
    "cloud-spot",
    "cloud-spot-price",
    "cloud-startup-script",
    "cloud-aws-security-group",
    "cloud-aws-subnet",
    "cloud-kubernetes-node-selector",
}
CML_GLOBAL_FLAGS = {"log", "driver", "repo", "driver-token", "token"}

Values = dict[str, Any]


@functools.cache
def _values_text() -> str:
    return VALUES_FILE.read_text(encoding="utf-8")


def _values() -> Values:
    """A fresh copy of deploy/runners/values.yaml (tests mutate it)."""
    values = yaml.safe_load(_values_text())
    assert isinstance(values, dict), f"{VALUES_FILE} is not a mapping"
    return values


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(VALUES_SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _pod_spec(values: Values) -> dict[str, Any]:
    return values.get("template", {}).get("spec", {})


def _containers(values: Values) -> list[dict[str, Any]]:
    spec = _pod_spec(values)
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _runner(values: Values) -> dict[str, Any]:
    """The container named `runner`, the one the chart hands the job to."""
    found = [c for c in _pod_spec(values).get("containers", []) if c.get("name") == "runner"]
    assert len(found) == 1, f"expected one container named runner, found {len(found)}"
    return found[0]


# --------------------------------------------------------------------------- checks


def _schema_problems(values: Values) -> list[str]:
    """Errors of the values against deploy/schemas/gha-runner-scale-set-values.json."""
    errors = sorted(_validator().iter_errors(values), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors]


def _pod_template(values: Values) -> Manifest:
    """The values' `template`, wrapped as the core PodTemplate that it is."""
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": f"{SCALE_SET_NAME}-runner-template"},
        "template": values["template"],
    }


def _k8s_problems(values: Values) -> list[str]:
    """Errors of the pod template against Kubernetes' own schema (unknown fields rejected)."""
    try:
        kubernetes_validate.validate(_pod_template(values), K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []


def _scale_problems(values: Values) -> list[str]:
    """No idle runners, a bounded scale, this project's scale set in its own runner group."""
    problems = []
    minimum, maximum = values.get("minRunners"), values.get("maxRunners")
    if type(minimum) is not int or minimum != 0:
        problems.append(f"minRunners must be 0 (no idle GPU pods), got {minimum!r}")
    if type(maximum) is not int or not 1 <= maximum <= MAX_RUNNERS_BOUND:
        problems.append(f"maxRunners must be an integer in 1..{MAX_RUNNERS_BOUND}, got {maximum!r}")
    if values.get("runnerScaleSetName") != SCALE_SET_NAME:
        problems.append(f"runnerScaleSetName must be {SCALE_SET_NAME!r} (the review's runs-on)")
    group = values.get("runnerGroup")
    if not isinstance(group, str) or not group.strip() or group.strip().lower() == "default":
        problems.append(f"runnerGroup must be a restricted group, not {group!r}")
    url = str(values.get("githubConfigUrl", ""))
    if not re.fullmatch(r"https://github\.com/(enterprises/)?[A-Za-z0-9-]+", url):
        problems.append(f"githubConfigUrl must be an organization URL (runner groups), got {url!r}")
    return problems


def _gpu_problems(values: Values) -> list[str]:
    """One GPU for the runner, on GPU nodes, past their taint."""
    problems = []
    resources = _runner(values).get("resources", {})
    for kind in ("requests", "limits"):
        amounts = resources.get(kind, {})
        for name in ("cpu", "memory"):
            if name not in amounts:
                problems.append(f"runner {kind} lack {name}")
        if str(amounts.get(GPU, "")) != "1" and (kind == "limits" or GPU in amounts):
            problems.append(f"runner {kind}.{GPU} must be 1, got {amounts.get(GPU)!r}")
    spec = _pod_spec(values)
    if spec.get("nodeSelector") != GPU_NODE_SELECTOR:
        problems.append(f"nodeSelector must be {GPU_NODE_SELECTOR}, got {spec.get('nodeSelector')}")
    if GPU_TOLERATION not in spec.get("tolerations", []):
        problems.append(f"tolerations lack {GPU_TOLERATION}")
    return problems


def _runner_problems(values: Values) -> list[str]:
    """The chart's runner container: a pinned image started with run.sh."""
    runner = _runner(values)
    problems = []
    image = str(runner.get("image", ""))
    tag = image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
    if "@sha256:" not in image and (not re.search(r"\d", tag) or tag == "latest"):
        problems.append(f"runner image must be pinned to a version tag or digest, got {image!r}")
    if runner.get("command") != RUNNER_COMMAND:
        problems.append(f"runner command must be {RUNNER_COMMAND}, got {runner.get('command')}")
    return problems


def _privilege_problems(values: Values) -> list[str]:
    """No privilege, escalation, capabilities, root, host namespaces or API token."""
    spec = _pod_spec(values)
    problems = []
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken must be false")
    if "serviceAccountName" in spec:
        problems.append("serviceAccountName set: the chart's permission-less account is replaced")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{field} is on")
    pod_sc = spec.get("securityContext", {})
    if pod_sc.get("runAsNonRoot") is not True or pod_sc.get("runAsUser") == 0:
        problems.append("the pod must run as non-root (runAsNonRoot: true, runAsUser != 0)")
    for container in _containers(values):
        name = container.get("name")
        sc = container.get("securityContext", {})
        if sc.get("privileged") is True:
            problems.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{name}: capabilities must drop ALL")
        if sc.get("capabilities", {}).get("add"):
            problems.append(f"{name}: adds capabilities {sc['capabilities']['add']}")
        if sc.get("runAsUser") == 0 or sc.get("runAsNonRoot") is False:
            problems.append(f"{name}: runs as root")
    return problems


def _docker_problems(values: Values) -> list[str]:
    """No docker daemon for job code: no dind mode, no socket, no host path, no DOCKER_HOST."""
    problems = []
    if "containerMode" in values:
        problems.append(f"containerMode set ({values['containerMode']}): dind/kubernetes mode")
    for volume in _pod_spec(values).get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"volume {volume.get('name')} is a hostPath {volume['hostPath']}")
    for path, node in iter_paths(values.get("template", {})):
        if isinstance(node, str) and DOCKER.search(node):
            problems.append(f"template.{'.'.join(map(str, path))} = {node!r} refers to docker")
    return problems


def _workspace_problems(values: Values) -> list[str]:
    """The work directory is a sized emptyDir: wiped with the pod, capped on the node."""
    volumes = {v.get("name"): v for v in _pod_spec(values).get("volumes", [])}
    problems = [
        f"volume {name} is a persistent claim a later job could reuse"
        for name, volume in volumes.items()
        if "persistentVolumeClaim" in volume
    ]
    mounts = {m.get("mountPath"): m.get("name") for m in _runner(values).get("volumeMounts", [])}
    work = volumes.get(mounts.get(WORK_DIR), {})
    if not work.get("emptyDir", {}).get("sizeLimit"):
        problems.append(f"{WORK_DIR} must be mounted from an emptyDir with a sizeLimit")
    return problems


def _credential_problems(values: Values) -> list[str]:
    """Credentials only by Secret name: no credential key with a value, no key material."""
    problems = []
    if not isinstance(values.get("githubConfigSecret"), str):
        problems.append("githubConfigSecret must name a pre-created Secret, not inline it")
    for path, node in iter_paths(values):
        where = ".".join(map(str, path)) or "<root>"
        if isinstance(node, dict):
            for key, value in node.items():
                if CREDENTIAL_KEY.search(str(key)) and isinstance(value, str) and value.strip():
                    problems.append(f"{where}.{key} holds a literal credential")
            named = str(node.get("name", ""))
            if CREDENTIAL_KEY.search(named) and str(node.get("value", "")).strip():
                problems.append(f"{where} ({named}) sets a literal credential")
        elif isinstance(node, str) and CREDENTIAL_TEXT.search(node):
            problems.append(f"{where} contains credential material")
    return problems


def _restricted_problems(values: Values) -> list[str]:
    """What the `restricted` Pod Security Standard of the runner namespace would refuse."""
    spec = _pod_spec(values)
    pod_sc = spec.get("securityContext", {})
    problems = [f"{f} is on" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume.get('name')}: type {sorted(kinds)} not allowed")
    if pod_sc.get("sysctls"):
        problems.append("sysctls set")
    for container in _containers(values):
        name = container.get("name")
        sc = container.get("securityContext", {})
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: capabilities must drop ALL and add nothing")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if 0 in (sc.get("runAsUser"), pod_sc.get("runAsUser")):
            problems.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        if seccomp.get("type") not in {"RuntimeDefault", "Localhost"}:
            problems.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost")
        if any("hostPort" in port for port in container.get("ports", [])):
            problems.append(f"{name}: hostPort")
    return problems


CHECKS: dict[str, Callable[[Values], list[str]]] = {
    "schema": _schema_problems,
    "k8s": _k8s_problems,
    "scale": _scale_problems,
    "gpu": _gpu_problems,
    "runner": _runner_problems,
    "privilege": _privilege_problems,
    "docker": _docker_problems,
    "workspace": _workspace_problems,
    "credentials": _credential_problems,
    "restricted": _restricted_problems,
}


# --------------------------------------------------------------------------- the real values


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_values_pass_check(check: str) -> None:
    """deploy/runners/values.yaml passes the schema, Kubernetes' schema and every safety check."""
    assert CHECKS[check](_values()) == []


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/your-org/gitops-text-classifier-runner:r-0123456789ab@sha256:" + "a" * 64,
        "registry.example.com:5000/your-org/gitops-text-classifier-runner@sha256:" + "b" * 64,
        "ghcr.io/actions/actions-runner:2.335.1",
    ],
)
def test_a_runner_image_pinned_by_tag_or_digest_passes(image: str) -> None:
    """What `make runner-pin` writes (any registry, a port too) is a valid pin."""
    values = _values()
    _runner(values)["image"] = image
    assert [name for name, check in CHECKS.items() if check(values)] == []


def test_values_schema_is_valid_and_strict() -> None:
    """The schema is valid 2020-12, requires the keys this project relies on, admits chart keys."""
    schema = json.loads(VALUES_SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) >= {
        "githubConfigUrl",
        "githubConfigSecret",
        "runnerScaleSetName",
        "runnerGroup",
        "minRunners",
        "maxRunners",
        "template",
    }
    assert "containerMode" not in schema["propertyNames"]["enum"]
    assert set(_values()) <= set(schema["propertyNames"]["enum"])


def test_values_name_the_review_runners() -> None:
    """The names the workflow and the GitHub settings refer to."""
    values = _values()
    assert values["runnerScaleSetName"] == SCALE_SET_NAME
    assert values["runnerGroup"] == RUNNER_GROUP
    assert values["githubConfigUrl"] == "https://github.com/your-org"
    assert values["minRunners"] == 0
    assert 1 <= values["maxRunners"] <= MAX_RUNNERS_BOUND


def test_values_file_holds_no_credential_material() -> None:
    """Not even in a comment: no PEM key or GitHub token anywhere in the file."""
    assert not CREDENTIAL_TEXT.search(_values_text())


def test_runner_namespace_enforces_restricted_pod_security() -> None:
    """The namespace the scale set is installed in refuses privileged or host-mounting pods."""
    (namespace,) = load_yaml_documents(NAMESPACE_FILE)
    kubernetes_validate.validate(namespace, K8S_VERSION, strict=True)
    assert namespace["kind"] == "Namespace"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --------------------------------------------------------------------------- negative controls


def _fake_token() -> str:
    return "ghp_" + "A1b2" * 9


def _fake_private_key() -> str:
    return "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE\n-----END RSA " + "PRIVATE KEY-----\n"


KeyPath = tuple[str | int, ...]


def _parent(values: Values, path: KeyPath) -> Any:
    target: Any = values
    for part in path[:-1]:
        target = target[part]
    return target


def _set(path: KeyPath, value: Any) -> Callable[[Values], None]:
    """A mutation that sets ``path`` to (a copy of) ``value``."""

    def mutate(values: Values) -> None:
        _parent(values, path)[path[-1]] = copy.deepcopy(value)

    return mutate


def _delete(path: KeyPath) -> Callable[[Values], None]:
    """A mutation that deletes ``path``."""

    def mutate(values: Values) -> None:
        del _parent(values, path)[path[-1]]

    return mutate


def _add_runner_env(name: str, value: str) -> Callable[[Values], None]:
    """A mutation that gives the runner container a literal environment variable."""

    def mutate(values: Values) -> None:
        _runner(values).setdefault("env", []).append({"name": name, "value": value})

    return mutate


def _add_docker_socket(values: Values) -> None:
    _pod_spec(values)["volumes"].append(
        {"name": "docker-sock", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}
    )
    _runner(values)["volumeMounts"].append(
        {"name": "docker-sock", "mountPath": "/var/run/docker.sock"}
    )


def _add_dind_sidecar(values: Values) -> None:
    _pod_spec(values)["containers"].append(
        {"name": "dind", "image": "docker:dind", "securityContext": {"privileged": True}}
    )


def _persistent_workspace(values: Values) -> None:
    _pod_spec(values)["volumes"] = [
        {"name": "work", "persistentVolumeClaim": {"claimName": "runner-cache"}}
    ]


RUNNER: KeyPath = ("template", "spec", "containers", 0)
SPEC: KeyPath = ("template", "spec")
MUTATIONS: list[tuple[str, Callable[[Values], None], set[str]]] = [
    ("drop the GPU limit", _delete((*RUNNER, "resources", "limits", GPU)), {"schema", "gpu"}),
    ("two GPUs", _set((*RUNNER, "resources", "limits", GPU), 2), {"schema", "gpu"}),
    ("no toleration", _set((*SPEC, "tolerations"), []), {"schema", "gpu"}),
    ("no node selector", _delete((*SPEC, "nodeSelector")), {"schema", "gpu"}),
    ("minRunners 3", _set(("minRunners",), 3), {"schema", "scale"}),
    ("unbounded maxRunners", _delete(("maxRunners",)), {"schema", "scale"}),
    ("runnerGroup default", _set(("runnerGroup",), "default"), {"schema", "scale"}),
    ("runnerGroup Default", _set(("runnerGroup",), "Default"), {"schema", "scale"}),
    (
        "repository-level URL",
        _set(("githubConfigUrl",), "https://github.com/your-org/gitops-text-classifier"),
        {"schema", "scale"},
    ),
    ("misspelt chart key", _set(("minRunner",), 0), {"schema"}),
    (
        "latest image",
        _set((*RUNNER, "image"), "ghcr.io/actions/actions-runner:latest"),
        {"schema", "runner"},
    ),
    (
        "untagged image on a registry with a port",
        _set((*RUNNER, "image"), "registry.example.com:5000/your-org/runner"),
        {"schema", "runner"},
    ),
    ("other command", _set((*RUNNER, "command"), ["/bin/sh"]), {"schema", "runner"}),
    (
        "privileged",
        _set((*RUNNER, "securityContext", "privileged"), True),
        {"schema", "privilege", "restricted"},
    ),
    (
        "privilege escalation",
        _set((*RUNNER, "securityContext", "allowPrivilegeEscalation"), True),
        {"schema", "privilege", "restricted"},
    ),
    (
        "capability added",
        _set((*RUNNER, "securityContext", "capabilities", "add"), ["SYS_ADMIN"]),
        {"schema", "privilege", "restricted"},
    ),
    (
        "root user",
        _set((*SPEC, "securityContext"), {"runAsUser": 0, "runAsNonRoot": False}),
        {"schema", "privilege", "restricted"},
    ),
    ("host network", _set((*SPEC, "hostNetwork"), True), {"schema", "privilege", "restricted"}),
    (
        "API token mounted",
        _set((*SPEC, "automountServiceAccountToken"), True),
        {"schema", "privilege"},
    ),
    ("own service account", _set((*SPEC, "serviceAccountName"), "ci"), {"schema", "privilege"}),
    ("docker.sock hostPath", _add_docker_socket, {"schema", "docker", "restricted"}),
    ("dind container mode", _set(("containerMode",), {"type": "dind"}), {"schema", "docker"}),
    ("dind sidecar", _add_dind_sidecar, {"schema", "docker", "privilege", "restricted"}),
    (
        "DOCKER_HOST",
        _add_runner_env("DOCKER_HOST", "tcp://dind:2375"),
        {"schema", "docker"},
    ),
    ("persistent workspace", _persistent_workspace, {"schema", "workspace"}),
    ("unsized workspace", _set((*SPEC, "volumes", 0, "emptyDir"), {}), {"schema", "workspace"}),
    (
        "inline github_token",
        _set(("githubConfigSecret",), {"github_token": _fake_token()}),
        {"schema", "credentials"},
    ),
    (
        "inline GitHub App key",
        _set(
            ("githubConfigSecret",),
            {
                "github_app_id": "123456",
                "github_app_installation_id": "654321",
                "github_app_private_key": _fake_private_key(),
            },
        ),
        {"schema", "credentials"},
    ),
    (
        "token in the runner env",
        _add_runner_env("GH_TOKEN", "x"),
        {"credentials"},
    ),
    ("unknown pod field", _set((*RUNNER, "privilegedMode"), False), {"k8s"}),
    ("wrong field type", _set((*RUNNER, "resources", "limits", "cpu"), ["8"]), {"k8s"}),
]


@pytest.mark.parametrize(("label", "mutate", "checks"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_checks_catch_unsafe_values(
    label: str, mutate: Callable[[Values], None], checks: set[str]
) -> None:
    """Each unsafe change to a copy of the real values is reported by every check named."""
    values = copy.deepcopy(_values())
    mutate(values)
    assert values != _values(), f"{label}: the mutation changed nothing"
    for check in sorted(checks):
        assert CHECKS[check](values), f"{check} accepted: {label}"


def test_restricted_check_allows_what_the_standard_allows() -> None:
    """The Pod Security model is not a blanket refusal: PVCs and NET_BIND_SERVICE pass it."""
    values = _values()
    _persistent_workspace(values)
    _runner(values)["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert _restricted_problems(values) == []


# --------------------------------------------------------------------------- README


def _readme() -> str:
    return README_FILE.read_text(encoding="utf-8")


def _shell_commands(text: str, prefix: str) -> list[str]:
    """Commands in ```sh blocks that start with ``prefix``, continuation lines joined."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [
            line.strip() for line in joined.splitlines() if line.strip().startswith(prefix)
        ]
    return commands


def _cml_command_problems(command: str) -> list[str]:
    """A `cml runner launch` that uses only v0.20.6 flags and gives one job per runner."""
    flags = set(re.findall(r"(?:^|\s)--([a-z][a-z-]*)", command))
    problems = [
        f"--{f} is not a cml v0.20.6 option"
        for f in sorted(flags - CML_LAUNCH_FLAGS - CML_GLOBAL_FLAGS)
    ]
    problems += [
        f"--{f} is missing"
        for f in sorted({"single", "labels", "cloud", "cloud-gpu", "idle-timeout"} - flags)
    ]
    problems += [
        f"--{f} keeps runners across jobs" for f in sorted(flags & {"reuse", "reuse-idle"})
    ]
    problems += [
        f"--{f} puts the token on the command line"
        for f in sorted(flags & {"token", "driver-token"})
    ]
    return problems


def test_readme_cml_alternative_is_ephemeral_and_valid() -> None:
    """The documented `cml runner launch` exists in v0.20.6 and takes a single job."""
    (command,) = _shell_commands(_readme(), "cml runner launch")
    assert _cml_command_problems(command) == []
    for bad in ("--reuse", "--ephemeral", "--token=x"):
        assert _cml_command_problems(command.replace("--single", bad)), bad


def test_readme_installs_what_the_values_name() -> None:
    """Helm commands for controller and scale set, in the namespace, Secret named as in values."""
    text = _readme()
    values = _values()
    (namespace,) = load_yaml_documents(NAMESPACE_FILE)
    runner_ns = namespace["metadata"]["name"]
    installs = _shell_commands(text, "helm install")
    assert len(installs) == 2
    controller, scale_set = installs
    assert f"{CHART}-controller" in controller and "--namespace" in controller
    assert scale_set.endswith(CHART) and f"--namespace {runner_ns}" in scale_set
    assert "-f deploy/runners/values.yaml" in scale_set
    assert all(f"--version {CHART_VERSION}" in c for c in installs)
    (secret,) = _shell_commands(text, "kubectl create secret")
    assert f"generic {values['githubConfigSecret']} --namespace {runner_ns}" in secret
    keys = set(re.findall(r"--from-(?:literal|file)=(\w+)=", secret))
    assert keys == {"github_app_id", "github_app_installation_id", "github_app_private_key"}
    assert f"kubectl apply -f {NAMESPACE_FILE.relative_to(DEPLOY_DIR.parent)}" in text


def test_readme_names_the_github_settings_safety_depends_on() -> None:
    """Runner group scope, selected workflow, fork approval, no personal public repositories."""
    text = " ".join(_readme().split())
    for needle in (
        f"Runner group `{RUNNER_GROUP}`",
        "Selected repositories",
        "Restrict to selected workflows",
        SELECTED_WORKFLOW,
        "Require approval for all outside collaborators",
        "personal account",
        f"runs-on: {SCALE_SET_NAME}",
    ):
        assert needle in text, needle
