//go:build tools

// Package tools pins the Kubernetes binaries the end-to-end tests build (kube-apiserver,
// kubectl, and for the tests' real node kubelet, kube-controller-manager, kube-scheduler and
// kube-proxy). `go install` cannot build them from k8s.io/kubernetes directly: its go.mod maps the
// staging modules to local folders, which Go ignores outside the main module, so this module
// maps them to their published versions instead.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
