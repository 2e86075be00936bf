package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/doctor"
)

// doctorCase is one registry behaviour and what doctor must say about it.
type doctorCase struct {
	name string
	opts []testregistry.Option
	// user/pass for the Docker config; "" for none.
	user, pass string
	noCA       bool // leave target.ca_file out
	args       []string
	exit       int
	// want maps check names to the status they must end with; every
	// check not named must be ok.
	want map[string]doctor.Status
	// detail maps check names to text their detail must contain.
	detail map[string]string
	// hint maps check names to text their hint must contain.
	hint map[string]string
	// provenance is Report.Provenance.
	provenance string
	// mode is the plan's target.provenance ("" leaves it out: auto).
	mode string
	// inUse is text Report.ProvenanceMode must contain.
	inUse string
}

const scratch = "opentofu-providers/" + doctor.ScratchName

func doctorCases() []doctorCase {
	mirrorUser := testregistry.TokenUser{Name: "mirror", Password: "s3cret", Grants: []testregistry.Grant{
		{Repository: "opentofu-providers/*", Actions: []string{"*"}},
	}}
	readOnly := testregistry.TokenUser{Name: "reader", Password: "r3ad", Grants: []testregistry.Grant{
		{Repository: "*", Actions: []string{"pull"}},
	}}
	allowOurs := &testregistry.MediaTypeAllowlist{Allowed: []string{"archive/zip"}}
	openTofuOnly := &testregistry.MediaTypeAllowlist{Allowed: []string{"archive/zip",
		"application/vnd.opentofu.provider", "application/vnd.opentofu.provider-target", "application/vnd.opentofu.modulepkg"}}
	noRepos := testregistry.NewRepositories()
	preCreated := testregistry.NewRepositories(scratch)
	noReferrersWant := map[string]doctor.Status{doctor.CheckReferrers: doctor.Warn}
	return []doctorCase{
		{
			name: "distribution, basic auth over TLS",
			opts: []testregistry.Option{testregistry.WithHtpasswd("mirror", "s3cret"), testregistry.WithDelete()},
			user: "mirror", pass: "s3cret",
			want:   noReferrersWant,
			detail: map[string]string{doctor.CheckReferrers: "fallback tag sha256-", doctor.CheckReachable: "Basic auth", doctor.CheckCredentials: "found for"},
			hint:   map[string]string{doctor.CheckReferrers: "Harbor 2.11+"}, provenance: doctor.ProvenanceReferrersTag,
		},
		{
			name: "distribution, token auth with per-repository scopes",
			opts: []testregistry.Option{testregistry.WithTokenAuth(mirrorUser), testregistry.WithDelete()},
			user: "mirror", pass: "s3cret",
			want:   noReferrersWant,
			detail: map[string]string{doctor.CheckReachable: "token auth (Bearer)"}, provenance: doctor.ProvenanceReferrersTag,
		},
		{
			name: "distribution, token auth, user without push",
			opts: []testregistry.Option{testregistry.WithTokenAuth(readOnly), testregistry.WithDelete()},
			user: "reader", pass: "r3ad", exit: exitFailed,
			want: skipAfterPush(map[string]doctor.Status{doctor.CheckCreate: doctor.Skip, doctor.CheckPush: doctor.Fail}),
			hint: map[string]string{doctor.CheckPush: "may not push to " + scratch},
		},
		{
			name: "distribution, token auth, wrong password",
			opts: []testregistry.Option{testregistry.WithTokenAuth(mirrorUser), testregistry.WithDelete()},
			user: "mirror", pass: "wrong", exit: exitFailed,
			want: skipAfterPush(map[string]doctor.Status{doctor.CheckPull: doctor.Fail, doctor.CheckCreate: doctor.Skip, doctor.CheckPush: doctor.Fail}),
			hint: map[string]string{doctor.CheckPull: "may not pull from " + scratch},
		},
		{
			name: "distribution, anonymous, deletes disabled",
			want: map[string]doctor.Status{doctor.CheckReferrers: doctor.Warn, doctor.CheckDelete: doctor.Warn},
			hint: map[string]string{doctor.CheckDelete: "storage.delete.enabled: true"}, provenance: doctor.ProvenanceReferrersTag,
		},
		{
			name: "distribution, CA not configured",
			opts: []testregistry.Option{testregistry.WithDelete()},
			noCA: true, exit: exitFailed,
			want: skipAfterReachable(),
			hint: map[string]string{doctor.CheckReachable: "target.ca_file"},
		},
		{
			name: "go-containerregistry with referrers",
			opts: []testregistry.Option{testregistry.WithImplementation(testregistry.GoContainerRegistry)},
			want: map[string]doctor.Status{}, provenance: doctor.ProvenanceReferrersAPI,
			detail: map[string]string{doctor.CheckReferrers: "referrers API lists"},
		},
		{
			name:   "ECR: 405 on subject",
			opts:   []testregistry.Option{testregistry.WithDelete(), testregistry.WithMiddleware(testregistry.RefuseSubject())},
			want:   map[string]doctor.Status{doctor.CheckSubject: doctor.Warn, doctor.CheckReferrers: doctor.Skip},
			detail: map[string]string{doctor.CheckSubject: "405 UNSUPPORTED: " + testregistry.ECRSubjectRefusedMessage},
			hint:   map[string]string{doctor.CheckSubject: "aws/containers-roadmap#2783"}, provenance: doctor.ProvenanceSubjectRefused,
			inUse: "tag tofu-provenance-<index hex> (auto: the registry refuses manifests with subject)",
		},
		{
			name:  "ECR: 405 on subject, target.provenance: referrers",
			opts:  []testregistry.Option{testregistry.WithDelete(), testregistry.WithMiddleware(testregistry.RefuseSubject())},
			mode:  "referrers",
			exit:  exitFailed,
			want:  map[string]doctor.Status{doctor.CheckSubject: doctor.Fail, doctor.CheckReferrers: doctor.Skip},
			hint:  map[string]string{doctor.CheckSubject: "set target.provenance: auto"},
			inUse: "every version would fail", provenance: doctor.ProvenanceSubjectRefused,
		},
		{
			name: "allowlist with OpenTofu's types but not the provenance types",
			opts: []testregistry.Option{testregistry.WithDelete(), testregistry.WithMiddleware(openTofuOnly.Middleware())},
			want: map[string]doctor.Status{doctor.CheckProvenance: doctor.Warn, doctor.CheckSubject: doctor.Skip, doctor.CheckReferrers: doctor.Skip},
			hint: map[string]string{doctor.CheckProvenance: "ALLOWED_OCI_ARTIFACT_TYPES"}, provenance: doctor.ProvenanceRefused,
			inUse: "versions are published without it",
		},
		{
			name:   "ECR: repositories must exist",
			opts:   []testregistry.Option{testregistry.WithDelete(), testregistry.WithMiddleware(noRepos.Middleware())},
			exit:   exitFailed,
			want:   skipAfterPush(map[string]doctor.Status{doctor.CheckCreate: doctor.Fail, doctor.CheckPush: doctor.Skip}),
			detail: map[string]string{doctor.CheckCreate: "404 NAME_UNKNOWN"},
			hint:   map[string]string{doctor.CheckCreate: "CREATE_ON_PUSH"},
		},
		{
			name: "ECR: repository created beforehand",
			opts: []testregistry.Option{testregistry.WithDelete(), testregistry.WithMiddleware(preCreated.Middleware())},
			want: noReferrersWant, provenance: doctor.ProvenanceReferrersTag,
		},
		{
			name: "Quay/GitLab: media type allowlist without OpenTofu's types",
			opts: []testregistry.Option{testregistry.WithDelete(), testregistry.WithMiddleware(allowOurs.Middleware())},
			exit: exitFailed,
			want: map[string]doctor.Status{doctor.CheckProvider: doctor.Fail, doctor.CheckIndex: doctor.Skip, doctor.CheckModule: doctor.Fail,
				doctor.CheckProvenance: doctor.Skip, doctor.CheckSubject: doctor.Skip, doctor.CheckReferrers: doctor.Skip, doctor.CheckPagination: doctor.Skip},
			detail: map[string]string{doctor.CheckProvider: `400 MANIFEST_INVALID: manifest invalid: media type "application/vnd.opentofu.provider-target" is not allowed`},
			hint:   map[string]string{doctor.CheckProvider: "ALLOWED_OCI_ARTIFACT_TYPES"},
		},
		{
			name: "nginx client_max_body_size 2m",
			opts: []testregistry.Option{testregistry.WithDelete(), testregistry.WithMiddleware((&testregistry.BodyLimit{Max: 2 << 20}).Middleware())},
			want: map[string]doctor.Status{doctor.CheckMonolithic: doctor.Warn, doctor.CheckReferrers: doctor.Warn},
			detail: map[string]string{doctor.CheckMonolithic: "largest accepted in one PUT: 1 MiB; 4 MiB refused: 413 Request Entity Too Large",
				doctor.CheckChunked: "chunks pass under the body limit"},
			hint: map[string]string{doctor.CheckMonolithic: "client_max_body_size"}, provenance: doctor.ProvenanceReferrersTag,
		},
		{
			name:       "nginx client_max_body_size 512k",
			opts:       []testregistry.Option{testregistry.WithDelete(), testregistry.WithMiddleware((&testregistry.BodyLimit{Max: 512 << 10}).Middleware())},
			exit:       exitFailed,
			want:       map[string]doctor.Status{doctor.CheckMonolithic: doctor.Warn, doctor.CheckChunked: doctor.Fail, doctor.CheckReferrers: doctor.Warn},
			detail:     map[string]string{doctor.CheckMonolithic: "largest accepted in one PUT: 256 KiB; 1 MiB refused", doctor.CheckChunked: "no way to upload larger packages"},
			provenance: doctor.ProvenanceReferrersTag,
		},
	}
}

var allChecks = []string{doctor.CheckReachable, doctor.CheckCredentials, doctor.CheckPull, doctor.CheckCreate, doctor.CheckPush,
	doctor.CheckMonolithic, doctor.CheckChunked, doctor.CheckProvider, doctor.CheckIndex, doctor.CheckModule,
	doctor.CheckProvenance, doctor.CheckSubject, doctor.CheckReferrers, doctor.CheckPagination, doctor.CheckDelete}

func skipAfterReachable() map[string]doctor.Status {
	m := map[string]doctor.Status{doctor.CheckReachable: doctor.Fail}
	for _, c := range allChecks[1:] {
		m[c] = doctor.Skip
	}
	return m
}

func skipAfterPush(m map[string]doctor.Status) map[string]doctor.Status {
	for _, c := range allChecks[5:] {
		m[c] = doctor.Skip
	}
	return m
}

func writeDoctorPlan(t *testing.T, reg *testregistry.Registry, withCA bool, mode string) string {
	t.Helper()
	yaml := fmt.Sprintf("version: 1\ntarget:\n  registry: %q\n", reg.Host)
	if mode != "" {
		yaml += "  provenance: " + mode + "\n"
	}
	if withCA {
		yaml += fmt.Sprintf("  ca_file: %q\n", reg.CAFile)
	}
	yaml += "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n"
	path := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDoctor runs the doctor command against each registry behaviour and
// checks every row's status, the named details and hints, and the exit
// code; the rendered table is logged (go test -v) for the record.
func TestDoctor(t *testing.T) {
	for _, tc := range doctorCases() {
		t.Run(tc.name, func(t *testing.T) {
			reg := testregistry.New(t, append([]testregistry.Option{testregistry.WithTLS()}, tc.opts...)...)
			plan := writeDoctorPlan(t, reg, !tc.noCA, tc.mode)
			dockerCfg := filepath.Join(t.TempDir(), "none.json")
			if err := os.WriteFile(dockerCfg, []byte(`{"auths":{}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.user != "" {
				dockerCfg = dockerConfigFor(t, reg.Host, tc.user, tc.pass)
			}
			e := &cliEnv{t: t}
			args := append([]string{"doctor", "-c", plan, "--docker-config", dockerCfg, "--max-blob-size", "4194304"}, tc.args...)
			table, errOut := e.mustRun(tc.exit, args...)
			t.Logf("tofu-oci-mirror doctor (%s):\n%s", tc.name, table)
			if tc.exit != exitOK && !strings.Contains(errOut, "failed on "+reg.Host) {
				t.Errorf("stderr lacks the failure summary:\n%s", errOut)
			}
			out, _ := e.mustRun(tc.exit, append(args, "--output", "json")...)
			var rep doctor.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("json: %v\n%s", err, out)
			}
			checkDoctorReport(t, tc, &rep)
			if rep.ProvenanceMode != "" && !strings.Contains(table, "Provenance: "+rep.ProvenanceMode) {
				t.Errorf("the table does not say which provenance mode is in use (%q)", rep.ProvenanceMode)
			}
		})
	}
}

func checkDoctorReport(t *testing.T, tc doctorCase, rep *doctor.Report) {
	t.Helper()
	if rep.Repository != scratch {
		t.Errorf("scratch repository %q, want %q", rep.Repository, scratch)
	}
	if len(rep.Checks) != len(allChecks) {
		t.Fatalf("%d checks, want %d: %+v", len(rep.Checks), len(allChecks), rep.Checks)
	}
	for i, name := range allChecks {
		c := rep.Checks[i]
		want, ok := tc.want[name]
		if !ok {
			want = doctor.OK
		}
		if c.Name != name || c.Status != want {
			t.Errorf("check %d: %s = %s (%s), want %s = %s", i, c.Name, c.Status, c.Detail, name, want)
		}
		if (c.Status == doctor.Fail || c.Status == doctor.Warn) && c.Hint == "" && c.Name != doctor.CheckMonolithic {
			t.Errorf("%s is %s without a hint", c.Name, c.Status)
		}
		if s := tc.detail[name]; s != "" && !strings.Contains(c.Detail, s) {
			t.Errorf("%s detail %q lacks %q", name, c.Detail, s)
		}
		if s := tc.hint[name]; s != "" && !strings.Contains(c.Hint, s) {
			t.Errorf("%s hint %q lacks %q", name, c.Hint, s)
		}
	}
	if rep.Provenance != tc.provenance {
		t.Errorf("provenance %q, want %q", rep.Provenance, tc.provenance)
	}
	if !strings.Contains(rep.ProvenanceMode, tc.inUse) {
		t.Errorf("provenance mode %q lacks %q", rep.ProvenanceMode, tc.inUse)
	}
	if rep.Get(doctor.CheckDelete).Status == doctor.OK && len(rep.Leftovers) != 0 {
		t.Errorf("delete ok but leftovers %v", rep.Leftovers)
	}
}
