package modsource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// netrcEntry is one machine (or the default) of a .netrc file.
type netrcEntry struct{ login, password string }

// netrc is a parsed .netrc: machines by name, and the default entry.
type netrc struct {
	machines map[string]netrcEntry
	def      *netrcEntry
}

// readNetrc parses the .netrc file at path as go-getter's netrc library
// does: "machine NAME", "default", "login", "password", "account" tokens
// separated by any white space, "#" comments, and "macdef" bodies skipped
// up to the next empty line. A missing file (or a directory) is no .netrc.
func readNetrc(path string) (*netrc, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrInvalid):
		return nil, nil
	case err != nil:
		if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
			return nil, nil
		}
		return nil, fmt.Errorf("reading netrc file %s: %w", path, err)
	}
	n := &netrc{machines: map[string]netrcEntry{}}
	var cur *netrcEntry
	var name string
	commit := func() {
		if cur == nil {
			return
		}
		if name == "" {
			n.def = cur
		} else if _, seen := n.machines[name]; !seen {
			n.machines[name] = *cur // the first entry for a machine wins
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	inMacro := false
	for sc.Scan() {
		line := sc.Text()
		if inMacro {
			inMacro = len(bytes.TrimSpace([]byte(line))) != 0
			continue
		}
		fields := bytes.Fields([]byte(line))
		for i := 0; i < len(fields); i++ {
			tok := string(fields[i])
			if tok[0] == '#' {
				break
			}
			next := func() string {
				if i+1 < len(fields) {
					i++
					return string(fields[i])
				}
				return ""
			}
			switch tok {
			case "machine":
				commit()
				cur, name = &netrcEntry{}, next()
			case "default":
				commit()
				cur, name = &netrcEntry{}, ""
			case "login":
				if v := next(); cur != nil {
					cur.login = v
				}
			case "password":
				if v := next(); cur != nil {
					cur.password = v
				}
			case "account":
				next()
			case "macdef":
				next()
				inMacro = true
				i = len(fields)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading netrc file %s: %w", path, err)
	}
	commit()
	return n, nil
}

// withNetrc returns rawURL with the .netrc login for its host[:port] (or
// the default entry) as user info, as go-getter's HTTP getter does with
// Netrc: true; a URL that already names a user is left alone.
func (f *Fetcher) withNetrc(rawURL string) (string, error) {
	if f.netrcPath == "" {
		return rawURL, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.User != nil && u.User.Username() != "") {
		return rawURL, nil
	}
	f.netrcOnce.Do(func() { f.netrc, f.netrcErr = readNetrc(f.netrcPath) })
	if f.netrcErr != nil || f.netrc == nil {
		return rawURL, f.netrcErr
	}
	e, ok := f.netrc.machines[u.Host]
	if !ok {
		if f.netrc.def == nil {
			return rawURL, nil
		}
		e = *f.netrc.def
	}
	u.User = url.UserPassword(e.login, e.password)
	return u.String(), nil
}
