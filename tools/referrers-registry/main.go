// Command referrers-registry serves go-containerregistry's in-memory OCI registry with the OCI 1.1
// referrers API enabled (its own cmd/registry does not enable it), for the tests, on loopback only.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "", "loopback host:port to listen on, e.g. 127.0.0.1:5555 (required)")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("-addr must be a loopback IP and port, e.g. 127.0.0.1:5555 (got %q)", *addr)
	}
	logger := log.New(os.Stderr, "referrers-registry: ", log.LstdFlags)
	handler := registry.New(registry.WithReferrersSupport(true), registry.Logger(logger))
	logger.Printf("listening on http://%s", *addr)
	logger.Fatal(http.ListenAndServe(*addr, handler))
}
