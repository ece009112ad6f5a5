package wire_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire"
)

func TestParseDate(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	for _, c := range []struct {
		in   string
		want time.Time // zero: not a date
	}{
		{"2024-01-02T03:04:05.123456Z", utc(2024, 1, 2, 3, 4, 5, 123456000)},
		{"2024-01-02T03:04:05.123456+00:00", utc(2024, 1, 2, 3, 4, 5, 123456000)},
		{"2024-01-02T03:04:05Z", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-01-02T03:04:05.5Z", utc(2024, 1, 2, 3, 4, 5, 500000000)},
		{"2024-01-02T03:04:05.000001Z", utc(2024, 1, 2, 3, 4, 5, 1000)},
		{"2024-01-02T04:04:05+01:00", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-01-02T04:04:05+0100", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-01-01T22:34:05-04:30", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-02-29T00:00:00Z", utc(2024, 2, 29, 0, 0, 0, 0)},
		{"2024-01-02T03:04:05", time.Date(2024, 1, 2, 3, 4, 5, 0, time.Local).UTC()}, // naive: local
		{"2024-01-02T03:04:05.1234567Z", time.Time{}},                                // 7 digits
		{"2024-01-02 03:04:05Z", time.Time{}},
		{"2024-01-02T03:04:05.Z", time.Time{}},
		{"2024-01-02T03:04:05+01", time.Time{}},
		{"2024-01-02T03:04:05+01:0", time.Time{}},
		{"2024-01-02T03:04:05+24:00", time.Time{}},
		{"2024-01-02T03:04:05z", time.Time{}},
		{"2024-01-02T03:04:05Z ", time.Time{}},
		{"2023-02-29T00:00:00Z", time.Time{}},
		{"2024-13-01T00:00:00Z", time.Time{}},
		{"2024-04-31T00:00:00Z", time.Time{}},
		{"2024-01-02T24:00:00Z", time.Time{}},
		{"2024-01-02T03:60:00Z", time.Time{}},
		{"2024-01-02T03:04:60Z", time.Time{}},
		{"0000-01-02T03:04:05Z", time.Time{}},
		{"2024-01-0٢T03:04:05Z", time.Time{}},
		{"+024-01-02T03:04:05Z", time.Time{}},
		{"2024-01-02", time.Time{}},
		{"", time.Time{}},
	} {
		got, ok := wire.ParseDate(c.in)
		if ok != !c.want.IsZero() || !got.Equal(c.want) || (ok && got.Location() != time.UTC) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", c.in, got, ok, c.want)
		}
	}
}

func TestFormatDate(t *testing.T) {
	for _, c := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC), "2024-01-02T03:04:05.123456Z"},
		{time.Date(2024, 1, 2, 3, 4, 5, 999, time.UTC), "2024-01-02T03:04:05Z"},
		{time.Date(2024, 1, 2, 3, 4, 5, 100000, time.UTC), "2024-01-02T03:04:05.000100Z"},
		{time.Date(2024, 1, 2, 4, 4, 5, 0, time.FixedZone("", 3600)), "2024-01-02T03:04:05Z"},
		{time.Date(999, 1, 2, 3, 4, 5, 0, time.UTC), "0999-01-02T03:04:05Z"},
	} {
		got := wire.FormatDate(c.in)
		if got != c.want {
			t.Errorf("FormatDate(%v) = %q, want %q", c.in, got, c.want)
		}
		if back, ok := wire.ParseDate(got); !ok || !back.Equal(c.in.Truncate(time.Microsecond)) {
			t.Errorf("ParseDate(FormatDate(%v)) = %v, %v", c.in, back, ok)
		}
	}
}

// TestFormatDateLayout checks FormatDate's hand-written layout against
// time's, over the years Python has and a few it has not.
func TestFormatDateLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20_000 {
		in := time.Unix(r.Int64N(253402300800+2*86400*366)-62135596800-86400*366, r.Int64N(1e9)).UTC() // years 0..10000
		if i == 0 {
			in = time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC)
		}
		want := in.Format("2006-01-02T15:04:05")
		if us := in.Nanosecond() / 1000; us != 0 {
			want += fmt.Sprintf(".%06d", us)
		}
		if got := wire.FormatDate(in); got != want+"Z" {
			t.Fatalf("FormatDate(%v) = %q, want %q", in, got, want+"Z")
		}
	}
}

func TestExtractDates(t *testing.T) {
	d := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	in := map[string]any{
		"submitted": map[string]any{"$gt": "2024-01-02T03:04:05Z", "$in": []any{"2024-01-02T04:04:05+01:00", "x", int64(1)}},
		"plain":     "2024-01-02 03:04:05",
	}
	want := map[string]any{
		"submitted": map[string]any{"$gt": d, "$in": []any{d, "x", int64(1)}},
		"plain":     "2024-01-02 03:04:05",
	}
	orig := map[string]any{
		"submitted": map[string]any{"$gt": "2024-01-02T03:04:05Z", "$in": []any{"2024-01-02T04:04:05+01:00", "x", int64(1)}},
		"plain":     "2024-01-02 03:04:05",
	}
	if got := wire.ExtractDates(in); !reflect.DeepEqual(got, want) {
		t.Errorf("ExtractDates = %#v, want %#v", got, want)
	}
	if !reflect.DeepEqual(in, orig) {
		t.Errorf("ExtractDates modified its input: %#v", in)
	}
}

func TestParseDateRange(t *testing.T) {
	for _, s := range []string{"0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"} {
		if got, ok := wire.ParseDate(s); ok {
			t.Errorf("ParseDate(%q) = %v: outside years 1-9999 in UTC", s, got)
		}
	}
}
