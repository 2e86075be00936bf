package target

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/regclient/regclient/types/errs"
)

// Refusal is a registry's answer to a failed request, dug out of the
// regclient error: its HTTP status, and the first OCI error code and
// message of the body (or an HTML page's title, as proxies answer). Sync's
// errors and doctor's rows both quote it, so a user sees the registry's
// own words.
type Refusal struct {
	// Status is the HTTP status; 0 when the error carries none.
	Status int
	// Code is the first OCI error code ("MANIFEST_INVALID", "NAME_UNKNOWN").
	Code string
	// Message is that error's message, or the title of an HTML answer.
	Message string
	// Err is the error parsed.
	Err error
}

var (
	httpStatusRe = regexp.MustCompile(`\[http (\d{3})\]`)
	htmlTitleRe  = regexp.MustCompile(`<title>([^<]+)</title>`)
)

// RefusalOf parses err; a nil err gives the zero Refusal.
func RefusalOf(err error) Refusal {
	r := Refusal{Err: err}
	if err == nil {
		return r
	}
	s := err.Error()
	if m := httpStatusRe.FindStringSubmatch(s); m != nil {
		r.Status, _ = strconv.Atoi(m[1])
	}
	if i := strings.Index(s, `{"errors"`); i >= 0 {
		var body struct {
			Errors []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"errors"`
		}
		if json.NewDecoder(strings.NewReader(s[i:])).Decode(&body) == nil && len(body.Errors) > 0 {
			r.Code, r.Message = body.Errors[0].Code, body.Errors[0].Message
		}
	} else if m := htmlTitleRe.FindStringSubmatch(s); m != nil {
		r.Message = m[1]
	}
	return r
}

// Unauthorized reports a 401 or 403, or an OCI DENIED/UNAUTHORIZED code.
func (r Refusal) Unauthorized() bool {
	return errors.Is(r.Err, errs.ErrHTTPUnauthorized) || r.Status == 401 || r.Status == 403 || r.Code == "DENIED" || r.Code == "UNAUTHORIZED"
}

// NameUnknown reports the OCI NAME_UNKNOWN code: the repository does not
// exist (ECR without create-on-push).
func (r Refusal) NameUnknown() bool { return r.Code == "NAME_UNKNOWN" }

// ContentRefused reports an answer refusing what was sent rather than who
// sent it or when: 400, 405, 415 or 422 (a media type off an allowlist,
// a manifest with subject on ECR), not an outage or missing credentials.
// Retrying the same request cannot succeed.
func (r Refusal) ContentRefused() bool {
	if r.Unauthorized() || r.NameUnknown() {
		return false
	}
	switch r.Status {
	case 400, 405, 415, 422:
		return true
	}
	return r.Code == "MANIFEST_INVALID" || r.Code == "UNSUPPORTED"
}

// TooLarge reports a 413: a body size limit (nginx client_max_body_size).
func (r Refusal) TooLarge() bool { return r.Status == 413 }

// String is the registry's answer as a person wants it in a message:
// "405 UNSUPPORTED: manifests with a subject field are not supported".
func (r Refusal) String() string {
	if r.Err == nil {
		return ""
	}
	var parts []string
	if r.Status != 0 {
		parts = append(parts, strconv.Itoa(r.Status))
	}
	if r.Code != "" {
		parts = append(parts, r.Code)
	}
	head := strings.Join(parts, " ")
	if strings.HasPrefix(r.Message, head) {
		head = "" // a proxy page's title already says "413 Request Entity Too Large"
	}
	switch {
	case head != "" && r.Message != "":
		return head + ": " + r.Message
	case head != "":
		return head
	case r.Message != "":
		return r.Message
	}
	return fmt.Sprint(r.Err)
}
