"""A real Kubernetes node for the tests, and the provider image built without a registry.

`run_node(directory)` brings up etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kube-proxy, CoreDNS, containerd + runc and kubelet in a private network namespace and tears all of
it down again (see node.py, netns.py, teardown.py). `provider_image(work)` builds
`localhost/signet:test` from the Dockerfile on a Debian rootfs (images.py), for
`Node.import_image`. Root only; `make tools` builds and installs what it runs.
"""

from .images import PROVIDER_IMAGE, pause_image, provider_image
from .netns import NODE_IP, POD_CIDR, SERVICE_CIDR
from .node import Node, run_node
from .teardown import host_state, leftovers

__all__ = [
    "NODE_IP",
    "POD_CIDR",
    "PROVIDER_IMAGE",
    "SERVICE_CIDR",
    "Node",
    "host_state",
    "leftovers",
    "pause_image",
    "provider_image",
    "run_node",
]
