package doctor

import (
	"fmt"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// What to configure, for the registries we know. Sources are in
// docs/registries.md; keep the two in step.

func hintTLS(host string) string {
	return fmt.Sprintf("set target.ca_file to the PEM of the CA that signed %s's certificate (OpenTofu needs the same CA in the system trust store), or target.insecure: true for a plain-HTTP lab registry", host)
}

func hintUnreachable(host string) string {
	return fmt.Sprintf("check target.registry (%s), DNS, firewalls and proxies between this machine and the registry", host)
}

func hintCredentials(host string) string {
	return fmt.Sprintf("log in (docker login %s, podman login) or pass --docker-config FILE; ECR: the docker-credential-ecr-login helper; GHCR: a token with write:packages; GitLab: a deploy token with write_registry", host)
}

func hintDenied(action, host, repo string) string {
	return fmt.Sprintf("the credentials for %s were refused or may not %s %s: check the password or token (docker login %[1]s), then the grants: Harbor: a robot account or member with push on the project; GitLab: write_registry on the project; GHCR: write:packages and access to the package; Quay: write on the repository or organization; token registries grant per repository, so grant the whole prefix", host, action, repo)
}

func hintCreate(repo string) string { return target.HintCreateRepository(repo) }

func hintBodyLimit(limitBelow string) string {
	return fmt.Sprintf("a proxy refuses request bodies of %s: raise nginx client_max_body_size (0 disables it) in front of the registry (Harbor: its nginx or the ingress annotation nginx.ingress.kubernetes.io/proxy-body-size; GitLab: the nginx in front of its registry; Nexus behind nginx); provider zips reach 100-200 MiB; until then large packages need chunked uploads below the limit", limitBelow)
}

func hintChunked() string {
	return "chunked uploads (PATCH) fail: some proxies drop PATCH or Content-Range; allow PATCH and raise the body limit so each chunk passes"
}

func hintMediaType(what string) string { return target.HintMediaType(what) }

func hintSubject(mode config.ProvenanceMode) string {
	if mode == config.ProvenanceReferrers {
		return "the registry refuses manifests with subject (ECR: aws/containers-roadmap#2783) and target.provenance is referrers: every version would fail at its provenance push; set target.provenance: auto (the default) or tag to keep provenance under a tofu-provenance-<hex> tag instead"
	}
	return "the registry refuses manifests with subject (ECR: aws/containers-roadmap#2783): with target.provenance: " + string(mode) + " sync keeps provenance under a tofu-provenance-<hex> tag instead, which verify, export and import find"
}

func hintNoReferrers() string {
	return "no referrers API: provenance is found through the sha256-<hex> fallback tag, which works; Zot, ACR, Harbor 2.11+ and Quay 3.12+ have the API"
}

func hintReferrersMissing() string {
	return "the referrers API answered without our artifact, or with another artifactType: verify and export may not find provenance"
}

func hintPagination() string {
	return "the tag list returns n tags without a Link header to the next page: clients that ask for pages miss versions (OpenTofu lists without n)"
}

func hintTagsIncomplete() string {
	return "the tag list misses tags doctor pushed: OpenTofu would not see every version; check the registry's tag listing and any proxy cache"
}

func hintDelete(repo string) string {
	return fmt.Sprintf("deletes are refused: distribution: storage.delete.enabled: true; Harbor: a maintainer or admin; ECR: ecr:BatchDeleteImage; doctor's writes stay in %s: delete that repository by hand", repo)
}
