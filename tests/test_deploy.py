"""deploy/: the cluster-launcher YAML validates against the schema that ships inside the
`ray` package; the KubeRay manifests parse and carry the fields KubeRay requires."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_cluster_launcher_yaml_matches_rays_schema() -> None:
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    jsonschema.validate(config, schema)
    gpu = [t for t in config["available_node_types"].values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu, "a GPU worker type"
    assert config["head_node_type"] in config["available_node_types"]


def test_schema_check_is_real() -> None:
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    config["available_node_types"]["head"]["resources"] = "eight CPUs"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)


def check_cluster_spec(spec: dict) -> None:
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    assert all(isinstance(v, str) for v in head["rayStartParams"].values())  # KubeRay wants strings
    containers = head["template"]["spec"]["containers"]
    assert containers and containers[0]["image"] and containers[0]["name"]
    groups = spec["workerGroupSpecs"]
    assert groups
    for group in groups:
        assert group["groupName"] and isinstance(group["rayStartParams"], dict)
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        container = group["template"]["spec"]["containers"][0]
        assert container["image"] and container["name"]
    gpu_limits = [g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")
                  for g in groups]
    assert any(gpu_limits), "a GPU worker group"


def test_kuberay_raycluster() -> None:
    doc = yaml.safe_load((DEPLOY / "kuberay" / "raycluster.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster" and doc["metadata"]["name"]
    check_cluster_spec(doc["spec"])


def test_kuberay_rayjob() -> None:
    doc = yaml.safe_load((DEPLOY / "kuberay" / "rayjob.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob" and doc["metadata"]["name"]
    assert "search.cli run" in doc["spec"]["entrypoint"] and "--address auto" in doc["spec"]["entrypoint"]
    check_cluster_spec(doc["spec"]["rayClusterSpec"])


def test_compose_has_postgres_and_a_ray_head() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "ray start --head" in services["ray-head"]["command"]
    assert services["ray-head"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (DEPLOY / services["ray-head"]["build"]["context"] / services["ray-head"]["build"]["dockerfile"]).is_file()


def test_dockerfile_installs_the_project_with_pinned_torch() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "torch==2.13.0" in text and "pip install --no-cache-dir ." in text
    for folder in ("archive", "search", "workers"):
        assert f"COPY {folder} ./{folder}" in text
