//go:build tools

// Package tools pins the Kubernetes binaries the end-to-end tests build (kube-apiserver,
// kubectl). `go install` cannot build them from k8s.io/kubernetes directly: its go.mod maps the
// staging modules to local folders, which Go ignores outside the main module, so this module
// maps them to their published versions instead.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
