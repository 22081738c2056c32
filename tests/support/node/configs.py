"""The node's configuration files: kubeconfigs, containerd, CNI, kubelet, kube-proxy, CoreDNS.

Everything a daemon would otherwise put in a machine-wide place (/var/lib/containerd,
/run/containerd/runc, /opt/containerd, /var/run/netns, /etc/cni, /var/lib/kubelet, /var/log/pods,
/usr/libexec/kubernetes) is pointed into the node's folder. What cannot be (kubelet's
/var/lib/kubelet/device-plugins, containerd 1.6's shim sockets in /run/containerd/s, kubelet's
kernel tunables, the kubepods cgroups) the teardown removes or restores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .netns import NODE_IP, POD_CIDR

API_PORT = 6443
DNS_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class Layout:
    """Where each part of the node lives under its folder."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def containerd(self) -> Path:
        return self.root / "containerd"

    @property
    def socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def kubelet(self) -> Path:
        return self.root / "kubelet"

    @property
    def cni(self) -> Path:
        return self.root / "cni"

    @property
    def admin(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def node(self) -> Path:
        return self.root / "node.kubeconfig"

    def conf(self, name: str) -> Path:
        return self.root / "conf" / name


def kubeconfig(path: Path, pki: Path, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "node",
        "clusters": [
            {
                "name": "node",
                "cluster": {
                    "server": f"https://127.0.0.1:{API_PORT}",
                    "certificate-authority": str(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "node", "context": {"cluster": "node", "user": user}}],
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def containerd(layout: Layout, sandbox_image: str) -> Path:
    state = layout.containerd
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    text = f"""version = 2
root = "{state / "root"}"
state = "{state / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{layout.socket}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{state / "opt"}"
[{cri}]
  sandbox_image = "{sandbox_image}"
  # Sandboxes ask for oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which this machine
  # kind lacks (runc: "nsexec: failed to update /proc/self/oom_score_adj: Permission denied").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{state / "runc"}"
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{layout.cni / "net.d"}"
"""
    path = layout.conf("containerd.toml")
    path.write_text(text)
    return path


def cni(layout: Layout) -> Path:
    conflist = {
        "cniVersion": "1.0.0",
        "name": "signet-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "signet-br0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"},
        ],
    }
    directory = layout.cni / "net.d"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "10-signet-node.conflist"
    path.write_text(json.dumps(conflist, indent=2))
    return path


def kubelet(layout: Layout) -> Path:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",  # cgroup v1 (hybrid) here, no systemd
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{layout.socket}",
        "podLogsDir": str(layout.root / "pod-logs"),
        "volumePluginDir": str(layout.kubelet / "volume-plugins"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(layout.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "address": NODE_IP,
        "port": 10250,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "readOnlyPort": 0,
        "clusterDomain": DNS_DOMAIN,
        "clusterDNS": [NODE_IP],
        "resolvConf": "",  # Pods do not inherit the machine's search domains
        # A busy disk must not evict the test's Pods or collect its imported (unpullable) images.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
    }  # fmt: skip
    path = layout.conf("kubelet.yaml")
    path.write_text(json.dumps(config, indent=2))
    return path


def kube_proxy(layout: Layout, node_name: str) -> Path:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clusterCIDR": "10.244.0.0/16",
        "hostnameOverride": node_name,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": ["primary"],
        "conntrack": {"maxPerCore": 0},  # leave the (machine-wide) conntrack table size alone
        "clientConnection": {"kubeconfig": str(layout.admin)},
    }
    path = layout.conf("kube-proxy.yaml")
    path.write_text(json.dumps(config, indent=2))
    return path


def corefile(layout: Layout) -> Path:
    """Cluster DNS only: no `forward`, there is no upstream to reach (and none may be used)."""
    text = f""".:53 {{
    bind {NODE_IP}
    errors
    kubernetes {DNS_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {layout.admin} node
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""
    path = layout.conf("Corefile")
    path.write_text(text)
    return path
