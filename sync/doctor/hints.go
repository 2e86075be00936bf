package doctor

import (
	"fmt"
	"strings"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
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

func hintCreate(repo string) string {
	prefix := repo
	if i := strings.LastIndex(repo, "/"); i > 0 {
		prefix = repo[:i]
	}
	first, _, _ := strings.Cut(repo, "/")
	return fmt.Sprintf("repositories must exist before the first push: ECR: turn on create-on-push (a repository creation template for prefix %q applied for CREATE_ON_PUSH, aws ecr create-repository-creation-template) or create every provider repository beforehand (aws ecr create-repository); Harbor: create the project %q; GitLab: the path must start with an existing project", prefix, first)
}

func hintBodyLimit(limitBelow string) string {
	return fmt.Sprintf("a proxy refuses request bodies of %s: raise nginx client_max_body_size (0 disables it) in front of the registry (Harbor: its nginx or the ingress annotation nginx.ingress.kubernetes.io/proxy-body-size; GitLab: the nginx in front of its registry; Nexus behind nginx); provider zips reach 100-200 MiB; until then large packages need chunked uploads below the limit", limitBelow)
}

func hintChunked() string {
	return "chunked uploads (PATCH) fail: some proxies drop PATCH or Content-Range; allow PATCH and raise the body limit so each chunk passes"
}

func hintMediaType(what string) string {
	return fmt.Sprintf("the registry refused %s: Quay: set FEATURE_GENERAL_OCI_SUPPORT: true and list under ALLOWED_OCI_ARTIFACT_TYPES the config type application/vnd.oci.empty.v1+json with layer types archive/zip, text/plain; charset=utf-8, application/pgp-signature and application/pgp-keys; GitLab: its registry accepts listed media types only (gitlab-org/container-registry#973), upgrade to a release that lists OpenTofu's; Nexus: use an OCI (not Docker) repository", what)
}

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
