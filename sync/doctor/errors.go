package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/regclient/regclient/types/errs"
)

var (
	// ErrNotRegistry is returned by Run for a target that is an OCI layout.
	ErrNotRegistry = errors.New("doctor probes registries only")
	// ErrInvalidRepository is returned by Run for a scratch repository
	// name the OCI distribution spec forbids.
	ErrInvalidRepository = errors.New("invalid scratch repository")
)

// refusal is a registry's answer to a failed request, dug out of the
// regclient error: its HTTP status, and the first OCI error code and
// message of the body (or an HTML page's title, as proxies answer).
type refusal struct {
	status  int
	code    string
	message string
	err     error
}

var (
	httpStatusRe = regexp.MustCompile(`\[http (\d{3})\]`)
	htmlTitleRe  = regexp.MustCompile(`<title>([^<]+)</title>`)
)

func refusalOf(err error) refusal {
	r := refusal{err: err}
	if err == nil {
		return r
	}
	s := err.Error()
	if m := httpStatusRe.FindStringSubmatch(s); m != nil {
		r.status, _ = strconv.Atoi(m[1])
	}
	if i := strings.Index(s, `{"errors"`); i >= 0 {
		var body struct {
			Errors []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Detail  any    `json:"detail"`
			} `json:"errors"`
		}
		if json.NewDecoder(strings.NewReader(s[i:])).Decode(&body) == nil && len(body.Errors) > 0 {
			r.code, r.message = body.Errors[0].Code, body.Errors[0].Message
		}
	} else if m := htmlTitleRe.FindStringSubmatch(s); m != nil {
		r.message = m[1]
	}
	return r
}

func (r refusal) unauthorized() bool {
	return errors.Is(r.err, errs.ErrHTTPUnauthorized) || r.status == 401 || r.status == 403 || r.code == "DENIED" || r.code == "UNAUTHORIZED"
}

func (r refusal) nameUnknown() bool { return r.code == "NAME_UNKNOWN" }

// String is the registry's answer as a person wants it in a row:
// "405 UNSUPPORTED: manifests with a subject field are not supported".
func (r refusal) String() string {
	if r.err == nil {
		return ""
	}
	var parts []string
	if r.status != 0 {
		parts = append(parts, strconv.Itoa(r.status))
	}
	if r.code != "" {
		parts = append(parts, r.code)
	}
	head := strings.Join(parts, " ")
	if strings.HasPrefix(r.message, head) {
		head = "" // a proxy page's title already says "413 Request Entity Too Large"
	}
	switch {
	case head != "" && r.message != "":
		return head + ": " + r.message
	case head != "":
		return head
	case r.message != "":
		return r.message
	}
	return fmt.Sprint(r.err)
}
