package testregistry

import (
	"time"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/config"
	"github.com/regclient/regclient/scheme/reg"
)

// ConfigHost describes this registry to regclient: plain HTTP or TLS with the
// test CA, and no credentials. Add User and Pass, or use DockerConfig, for a
// registry made WithHtpasswd.
func (r *Registry) ConfigHost() config.Host {
	h := config.Host{Name: r.Host, TLS: config.TLSDisabled}
	if r.opts.tls {
		h.TLS = config.TLSEnabled
		h.RegCert = string(r.CACertPEM)
	}
	return h
}

// Client returns a regclient that reaches this registry (ConfigHost plus the
// htpasswd credentials, if any) and retries quickly, so tests of failures do
// not sit in backoff. opts are applied after these and may override them.
func (r *Registry) Client(opts ...regclient.Opt) *regclient.RegClient {
	h := r.ConfigHost()
	h.User, h.Pass = r.opts.user, r.opts.pass
	all := []regclient.Opt{
		regclient.WithConfigHost(h),
		regclient.WithRegOpts(reg.WithDelay(10*time.Millisecond, 100*time.Millisecond)),
	}
	return regclient.New(append(all, opts...)...)
}
