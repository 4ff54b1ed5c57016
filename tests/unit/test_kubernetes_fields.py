"""Pure: Kubernetes objects -> event fields, and logship.io annotations."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shipper.kubernetes import annotations, fields


def test_dedot_as_filebeat() -> None:
    assert fields.dedot({"app.kubernetes.io/name": "web", "app": "x"}) == {"app_kubernetes_io/name": "web", "app": "x"}
    assert fields.dedot({"a.b": "c"}, enabled=False) == {"a.b": "c"}


def test_owners_deployment_through_pod_template_hash() -> None:
    meta = {
        "labels": {"pod-template-hash": "5d9c7b6f8"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-api-5d9c7b6f8", "controller": True}],
    }
    assert fields.owners(meta) == {"replicaset": {"name": "web-api-5d9c7b6f8"}, "deployment": {"name": "web-api"}}


def test_owners_replicaset_without_deployment_hash() -> None:
    meta = {"ownerReferences": [{"kind": "ReplicaSet", "name": "standalone"}]}
    assert fields.owners(meta) == {"replicaset": {"name": "standalone"}}


def test_owners_other_kinds() -> None:
    assert fields.owners({"ownerReferences": [{"kind": "StatefulSet", "name": "db"}]}) == {
        "statefulset": {"name": "db"}
    }
    assert fields.owners({"ownerReferences": [{"kind": "DaemonSet", "name": "agent"}]}) == {
        "daemonset": {"name": "agent"}
    }
    assert fields.owners({"ownerReferences": [{"kind": "Job", "name": "backup-28930215"}]}) == {
        "job": {"name": "backup-28930215"},
        "cronjob": {"name": "backup"},
    }
    assert fields.owners({"ownerReferences": [{"kind": "Job", "name": "migrate"}]}) == {"job": {"name": "migrate"}}
    assert fields.owners({}) == {}


def test_cloud_from_eks_node() -> None:
    node = {
        "metadata": {
            "labels": {
                "topology.kubernetes.io/region": "us-east-1",
                "topology.kubernetes.io/zone": "us-east-1a",
                "node.kubernetes.io/instance-type": "m5.large",
            }
        },
        "spec": {"providerID": "aws:///us-east-1a/i-0abc123"},
    }
    assert fields.cloud_from_node(node) == {
        "provider": "aws",
        "region": "us-east-1",
        "availability_zone": "us-east-1a",
        "instance": {"id": "i-0abc123"},
        "machine": {"type": "m5.large"},
    }


def test_cloud_region_from_zone_when_labels_missing() -> None:
    node = {"metadata": {}, "spec": {"providerID": "aws:///eu-west-3c/i-1"}}
    assert fields.cloud_from_node(node) == {
        "provider": "aws",
        "region": "eu-west-3",
        "availability_zone": "eu-west-3c",
        "instance": {"id": "i-1"},
    }


def test_cloud_gce_and_none() -> None:
    node = {"metadata": {}, "spec": {"providerID": "gce://proj/europe-west1-b/node-1"}}
    assert fields.cloud_from_node(node) == {
        "provider": "gcp",
        "project": {"id": "proj"},
        "availability_zone": "europe-west1-b",
        "instance": {"id": "node-1"},
    }
    assert fields.cloud_from_node({"metadata": {}, "spec": {}}) == {}


def test_container_ids_and_images() -> None:
    pod = {
        "spec": {
            "containers": [{"name": "app", "image": "repo/app:1"}],
            "initContainers": [{"name": "i", "image": "b"}],
        },
        "status": {"containerStatuses": [{"name": "app", "containerID": "containerd://abc"}]},
    }
    assert fields.container_images(pod) == {"i": "b", "app": "repo/app:1"}
    assert fields.container_ids(pod) == {"abc": "app"}


def test_annotations_parsed() -> None:
    ctl = annotations.parse(
        {
            "logship.io/exclude-sidecar": "true",
            "logship.io/multiline.start_pattern": r"^\d{4}-",
            "logship.io/multiline.start_pattern-java": r"^\[",
            "logship.io/timestamp.pattern": r"^(?P<ts>\S+)",
            "logship.io/index": "payments",
            "logship.io/tags": "java, team-a",
            "other.io/x": "y",
        }
    )
    assert ctl.errors == []
    assert not ctl.exclude and ctl.excluded("sidecar") and not ctl.excluded("java")
    assert ctl.multiline_for("java") == r"^\[" and ctl.multiline_for("other") == r"^\d{4}-"
    assert ctl.timestamp_for("java") == r"^(?P<ts>\S+)"
    assert ctl.index == "payments" and ctl.tags == ("java", "team-a")
    assert annotations.parse({"logship.io/exclude": "True"}).excluded("anything")


def test_invalid_annotations_reported_and_ignored() -> None:
    ctl = annotations.parse(
        {
            "logship.io/exclude": "maybe",
            "logship.io/multiline.start_pattern": "([",
            "logship.io/timestamp.pattern": r"^\d+",
            "logship.io/index": "Bad Index!",
            "logship.io/colour": "blue",
        }
    )
    keys = sorted(k for k, _ in ctl.errors)
    assert keys == [
        "logship.io/colour",
        "logship.io/exclude",
        "logship.io/index",
        "logship.io/multiline.start_pattern",
        "logship.io/timestamp.pattern",
    ]
    assert ctl.empty


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "logship.io/exclude",
                "logship.io/index",
                "logship.io/tags",
                "logship.io/multiline.start_pattern",
                "logship.io/timestamp.pattern-c",
                "logship.io/exclude-c",
                "logship.io/x",
            ]
        ),
        st.text(max_size=40),
    )
)
def test_annotation_parsing_never_raises(annos: dict[str, str]) -> None:
    ctl = annotations.parse(annos)
    assert len(ctl.errors) <= len(annos)
