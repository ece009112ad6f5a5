package config

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Redacted replaces a non-empty HMAC key, and a password in
// db.postgres.dsn, in [Config.YAML].
const Redacted = "<redacted>"

// YAML returns c as a YAML document in declaration order, with a non-empty
// session.key and the passwords of db.postgres.dsn and db.mongodb.uri
// replaced by [Redacted]. Loading the output gives c back, except for
// those.
func (c Config) YAML() []byte {
	if c.Session.Key != "" {
		c.Session.Key = Redacted
	}
	c.DB.Postgres.DSN = RedactDSN(c.DB.Postgres.DSN)
	c.DB.MongoDB.URI = redactURI(c.DB.MongoDB.URI)
	var b bytes.Buffer
	var prev []string
	for _, l := range leaves(&c) {
		parts := strings.Split(l.key, ".")
		// Open the sections this key does not share with the previous one.
		same := 0
		for same < len(parts)-1 && same < len(prev)-1 && parts[same] == prev[same] {
			same++
		}
		for i := same; i < len(parts)-1; i++ {
			fmt.Fprintf(&b, "%s%s:\n", strings.Repeat("  ", i), parts[i])
		}
		fmt.Fprintf(&b, "%s%s: %s\n", strings.Repeat("  ", len(parts)-1), parts[len(parts)-1], yamlValue(l.val.Interface()))
		prev = parts
	}
	return b.Bytes()
}

// uriPassword matches the password of a URI's user info. It does not
// parse the URI: a MongoDB URI may list several hosts, which net/url
// refuses.
var uriPassword = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:@/]*:)[^@/]*@`)

// redactURI replaces the password of a URI by [Redacted].
func redactURI(s string) string {
	return uriPassword.ReplaceAllString(s, "${1}"+Redacted+"@")
}

func yamlValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case time.Duration:
		return strconv.Quote(v.String())
	case ByteSize:
		return strconv.Quote(v.String())
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// dsnPassword finds the password of a key=value connection string.
var dsnPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]+)`)

// RedactDSN returns a PostgreSQL connection string (URL or key=value)
// with its password replaced by [Redacted].
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Redacted)
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", Redacted)
			u.RawQuery = q.Encode()
		}
		s, _ := url.PathUnescape(u.String())
		return s
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}"+Redacted)
}
