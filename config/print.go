package config

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Redacted replaces a non-empty HMAC key in [Config.YAML].
const Redacted = "<redacted>"

// YAML returns c as a YAML document in declaration order, with a non-empty
// session.key replaced by [Redacted] and the password in db.mongodb.uri by
// xxxxx. Loading the output gives c back, except for those.
func (c Config) YAML() []byte {
	if c.Session.Key != "" {
		c.Session.Key = Redacted
	}
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

// redactURI replaces the password of a URI by xxxxx. A string that does
// not parse is replaced whole by [Redacted] when it may hold a password.
func redactURI(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return Redacted
		}
		return s
	}
	return u.Redacted()
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
