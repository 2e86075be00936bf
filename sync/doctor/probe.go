package doctor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// prober carries what one Run learnt and wrote, check to check.
type prober struct {
	rc     *regclient.RegClient
	target config.Target
	opts   options
	repo   ref.Ref // the scratch repository, no tag
	nonce  string
	rep    *Report

	authScheme  string // from the /v2/ challenge: "Bearer", "Basic" or ""
	repoExisted bool
	monoLimit   int64 // largest monolithic upload accepted when a larger one was refused; 0 = no limit seen

	blobs     []descriptor.Descriptor // pushed, deleted last
	manifests []digest.Digest         // pushed, deleted in reverse
	tags      []string
	layer     descriptor.Descriptor
	index     manifest.Artifact
}

func (p *prober) add(name string, s Status, detail, hint string) {
	p.opts.logger.Debug("doctor check", "check", name, "status", s, "detail", detail)
	p.rep.Checks = append(p.rep.Checks, Check{Name: name, Status: s, Detail: detail, Hint: hint})
}

func (p *prober) skip(reason string, names ...string) {
	for _, n := range names {
		p.add(n, Skip, "not tested: "+reason, "")
	}
}

func (p *prober) run(ctx context.Context) {
	if !p.reachable(ctx) {
		p.skip("registry not reachable", CheckCredentials, CheckPull, CheckCreate, CheckPush, CheckMonolithic, CheckChunked,
			CheckProvider, CheckIndex, CheckModule, CheckProvenance, CheckSubject, CheckReferrers, CheckPagination, CheckDelete)
		return
	}
	p.credentials()
	p.pull(ctx)
	if !p.push(ctx) {
		p.skip("nothing can be pushed", CheckMonolithic, CheckChunked, CheckProvider, CheckIndex, CheckModule,
			CheckProvenance, CheckSubject, CheckReferrers, CheckPagination, CheckDelete)
		return
	}
	p.uploads(ctx)
	if p.artifacts(ctx) {
		p.provenance(ctx)
		p.pagination(ctx)
	} else {
		p.skip("the provider index was refused", CheckProvenance, CheckSubject, CheckReferrers, CheckPagination)
	}
	p.cleanup(ctx)
}

func (p *prober) reachable(ctx context.Context) bool {
	host := p.target.Registry
	scheme, trust := "https", "certificate trusted by the system roots"
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if p.target.Insecure {
		scheme, trust = "http", "plain HTTP (target.insecure)"
	} else if p.target.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(p.target.CAFile)
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			p.add(CheckReachable, Fail, fmt.Sprintf("target.ca_file %s: no PEM certificate (%v)", p.target.CAFile, err), hintTLS(host))
			return false
		}
		tlsCfg.RootCAs = pool
		trust = "certificate trusted through target.ca_file"
	}
	// Proxy is nil on purpose: the library reads no environment.
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/v2/", nil)
	if err != nil {
		p.add(CheckReachable, Fail, err.Error(), hintUnreachable(host))
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) || strings.Contains(err.Error(), "x509:") {
			p.add(CheckReachable, Fail, "TLS not trusted: "+err.Error(), hintTLS(host))
		} else {
			p.add(CheckReachable, Fail, err.Error(), hintUnreachable(host))
		}
		return false
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		p.add(CheckReachable, Fail, fmt.Sprintf("%s://%s/v2/ answered %s: not an OCI registry API", scheme, host, resp.Status), hintUnreachable(host))
		return false
	}
	auth := "asks for no credentials"
	if ch := resp.Header.Get("WWW-Authenticate"); ch != "" {
		p.authScheme, _, _ = strings.Cut(ch, " ")
		auth = p.authScheme + " auth"
		if strings.EqualFold(p.authScheme, "Bearer") {
			auth = "token auth (Bearer)"
		}
	}
	p.add(CheckReachable, OK, fmt.Sprintf("%s; /v2/ answered %d, %s", trust, resp.StatusCode, auth), "")
	return true
}

func (p *prober) credentials() {
	host := p.target.Registry
	switch {
	case !p.opts.credsKnown:
		p.add(CheckCredentials, Skip, "not tested: the caller did not look for credentials", "")
	case p.opts.creds.Found:
		p.add(CheckCredentials, OK, "found for "+host+" in "+p.opts.creds.Source, "")
	case p.authScheme == "":
		p.add(CheckCredentials, OK, "none for "+host+", and the registry asks for none", "")
	default:
		p.add(CheckCredentials, Warn, "none for "+host+": requests go anonymous, the registry wants "+p.authScheme+" auth", hintCredentials(host))
	}
}

func (p *prober) pull(ctx context.Context) {
	tl, err := p.rc.TagList(ctx, p.repo)
	if err == nil {
		tags, _ := tl.GetTags()
		p.repoExisted = len(tags) > 0
		p.add(CheckPull, OK, fmt.Sprintf("listed the tags of %s (%d)", p.repo.Repository, len(tags)), "")
		return
	}
	r := refusalOf(err)
	switch {
	case r.NameUnknown() || r.Status == http.StatusNotFound:
		p.add(CheckPull, OK, fmt.Sprintf("may read; %s does not exist yet (%s)", p.repo.Repository, r), "")
	case r.Unauthorized():
		p.add(CheckPull, Fail, "refused: "+r.String(), hintDenied("pull from", p.target.Registry, p.repo.Repository))
	default:
		p.add(CheckPull, Fail, "listing tags: "+r.String(), "")
	}
}

// push uploads the first blob; its answer also tells whether the registry
// creates repositories on push.
func (p *prober) push(ctx context.Context) bool {
	d, err := p.putBlob(ctx, 1<<10, manifest.ZipLayerMediaType, false)
	if err == nil {
		p.layer = d
		if p.repoExisted {
			p.add(CheckCreate, OK, p.repo.Repository+" existed already, so creation on push is not proven", "")
		} else {
			p.add(CheckCreate, OK, "created "+p.repo.Repository+" on the first push", "")
		}
		p.add(CheckPush, OK, "uploaded a 1 KiB blob", "")
		return true
	}
	r := refusalOf(err)
	switch {
	case r.NameUnknown():
		p.add(CheckCreate, Fail, p.repo.Repository+" does not exist and the registry does not create it on push: "+r.String(), hintCreate(p.repo.Repository))
		p.add(CheckPush, Skip, "not tested: the repository is missing", "")
	case r.Unauthorized():
		p.add(CheckCreate, Skip, "not tested: push refused", "")
		p.add(CheckPush, Fail, "refused: "+r.String(), hintDenied("push to", p.target.Registry, p.repo.Repository))
	default:
		p.add(CheckCreate, Skip, "not tested: push failed", "")
		p.add(CheckPush, Fail, "uploading a 1 KiB blob: "+r.String(), "")
	}
	return false
}

// putBlob uploads size bytes of fresh random content (so no registry can
// answer "already exists" and skip the upload), generated twice from one
// seed: once to hash, once to send. chunked leaves digest and size out of
// the descriptor, which makes regclient upload in chunks; otherwise the
// reader hides Seek so regclient sends one PUT and nothing else.
func (p *prober) putBlob(ctx context.Context, size int64, mediaType string, chunked bool) (descriptor.Descriptor, error) {
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	gen := func() io.Reader { return io.LimitReader(mrand.NewChaCha8(seed), size) }
	h := sha256.New()
	if _, err := io.Copy(h, gen()); err != nil {
		return descriptor.Descriptor{}, err
	}
	d := descriptor.Descriptor{MediaType: mediaType, Digest: digest.NewDigest(digest.SHA256, h), Size: size}
	send := d
	if chunked {
		send = descriptor.Descriptor{MediaType: mediaType}
	}
	got, err := p.rc.BlobPut(ctx, p.repo, send, struct{ io.Reader }{gen()})
	if err != nil {
		return d, err
	}
	if got.Digest != d.Digest {
		return d, fmt.Errorf("registry stored digest %s, sent %s", got.Digest, d.Digest)
	}
	p.blobs = append(p.blobs, d)
	return d, nil
}

func (p *prober) uploads(ctx context.Context) {
	var sizes []int64
	for s := int64(64 << 10); s < p.opts.maxBlob; s *= 4 {
		sizes = append(sizes, s)
	}
	sizes = append(sizes, p.opts.maxBlob)
	var lastOK int64
	var refused *refusal
	var refusedAt int64
	for _, s := range sizes {
		if _, err := p.putBlob(ctx, s, manifest.ZipLayerMediaType, false); err != nil {
			r := refusalOf(err)
			refused, refusedAt = &r, s
			break
		}
		lastOK = s
	}
	switch {
	case refused == nil:
		p.add(CheckMonolithic, OK, "one PUT of up to "+size(lastOK)+" accepted (larger not tried)", "")
	case lastOK == 0:
		hint := ""
		if refused.Status == http.StatusRequestEntityTooLarge {
			hint = hintBodyLimit(size(refusedAt) + " and less")
		}
		p.add(CheckMonolithic, Fail, size(refusedAt)+" in one PUT: "+refused.String(), hint)
	case refused.Status == http.StatusRequestEntityTooLarge:
		p.monoLimit = lastOK
		p.add(CheckMonolithic, Warn, fmt.Sprintf("largest accepted in one PUT: %s; %s refused: %s", size(lastOK), size(refusedAt), refused),
			hintBodyLimit(fmt.Sprintf("over %s (somewhere up to %s)", size(lastOK), size(refusedAt))))
	default:
		p.add(CheckMonolithic, Warn, fmt.Sprintf("%s accepted; %s failed: %s", size(lastOK), size(refusedAt), refused), "")
	}

	n := int64(2)*p.opts.chunkSize + p.opts.chunkSize/2
	chunks := (n + p.opts.chunkSize - 1) / p.opts.chunkSize
	if _, err := p.putBlob(ctx, n, manifest.ZipLayerMediaType, true); err != nil {
		r := refusalOf(err)
		if p.monoLimit > 0 || lastOK == 0 {
			p.add(CheckChunked, Fail, fmt.Sprintf("%s in %d chunks: %s; no way to upload larger packages", size(n), chunks, r), hintChunked()+"; "+hintBodyLimit(fmt.Sprintf("of %s chunks", size(p.opts.chunkSize))))
		} else {
			p.add(CheckChunked, Warn, fmt.Sprintf("%s in %d chunks: %s (monolithic uploads work)", size(n), chunks, r), hintChunked())
		}
		return
	}
	detail := fmt.Sprintf("%s in %d PATCHes of up to %s, then PUT", size(n), chunks, size(p.opts.chunkSize))
	if p.monoLimit > 0 {
		detail += ": chunks pass under the body limit"
	}
	p.add(CheckChunked, OK, detail, "")
}

func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
