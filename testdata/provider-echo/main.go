// Command terraform-provider-echo is a minimal real OpenTofu provider used by
// the acceptance tests of tofu-oci-mirror. It serves plugin protocol 6 and
// offers a single data source, echo, whose computed output equals its input.
//
// The tests package the binary as terraform-provider-echo_v<VERSION> inside a
// provider zip, exactly as a published provider would be packaged.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

// version is the provider version reported to OpenTofu. It can be set at
// build time with -ldflags "-X main.version=1.2.3"; OpenTofu itself takes the
// version from the package it installed, so the default is fine for tests.
var version = "dev"

// Address is the provider source address the provider announces when run in
// debug mode. OpenTofu does not check it when it launches the plugin itself,
// so the same binary can be installed under any address.
const Address = "registry.opentofu.org/hashicorp/echo"

func main() {
	debug := flag.Bool("debug", false, "run the provider in debug mode (prints TF_REATTACH_PROVIDERS)")
	flag.Parse()

	err := providerserver.Serve(context.Background(), newProvider(version), providerserver.ServeOpts{
		Address:         Address,
		Debug:           *debug,
		ProtocolVersion: 6,
	})
	if err != nil {
		log.Fatal(err)
	}
}
