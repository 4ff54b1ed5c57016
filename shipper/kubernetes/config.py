"""The `shipper.kubernetes:` config section."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, field

from logship.config import Duration, StrictModel


class KubernetesBackoff(StrictModel, frozen=True):
    initial: Duration = 1.0
    max: Duration = 30.0


class KubernetesConfig(StrictModel, frozen=True):
    """Metadata from the Kubernetes API (off by default: the file name alone gives pod/namespace/container)."""

    enabled: bool = False
    # the node whose pods are watched (`spec.nodeName`); `${NODE_NAME}` from the downward API in the chart,
    # else the shipper's `name`, else the hostname
    node_name: str | None = None
    # None: in-cluster (the ServiceAccount token and CA) when KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG
    # or ~/.kube/config
    kubeconfig: str | None = None
    # a container log file whose pod the watch has not delivered yet waits at most this long before it is
    # read with file-name metadata only (flagged `kubernetes.metadata: partial`)
    wait_for_pod: Annotated[Duration, Meta(ge=0)] = 2.0
    # metadata of a deleted pod is kept this long, for the last lines of its files
    deleted_grace: Annotated[Duration, Meta(ge=0)] = 300.0
    # annotation keys (fnmatch patterns) copied to `kubernetes.annotations.*`; none by default
    annotations: list[str] = field(default_factory=list)
    # `app.kubernetes.io/name` -> `app_kubernetes_io/name`, as Filebeat's `labels.dedot`
    labels_dedot: bool = True
    annotations_dedot: bool = True
    namespace_labels: bool = True
    node_labels: bool = True
    cloud: bool = True  # `cloud.*` from the Node's providerID and topology labels
    # server-side timeout of one watch request; the watch resumes from the last resourceVersion after it
    watch_timeout: Annotated[Duration, Meta(ge=1)] = 300.0
    backoff: KubernetesBackoff = field(default_factory=KubernetesBackoff)
