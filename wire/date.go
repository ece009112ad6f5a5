package wire

import "time"

// ParseDate parses an ISO 8601 date the way jupyter_client's parse_date
// does: it accepts exactly
//
//	YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|±HH:MM|±HHMM]
//
// A string with 7 or more fraction digits, a space instead of "T", or an
// impossible calendar date is not a date (ok is false). A date without a
// zone is taken in the local time zone (time.Local), as Python does. The
// result is always in UTC, and in years 1–9999 (what Python and Encode can
// represent).
func ParseDate(s string) (t time.Time, ok bool) { return parseDate(s) }

// parseDate is ParseDate for strings and, without a copy, for bytes.
func parseDate[S string | []byte](s S) (time.Time, bool) {
	// Positions: 0123456789012345678
	//            YYYY-MM-DDTHH:MM:SS
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	var nsec int
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n < 2 || n > 7 { // 1 to 6 digits
			return time.Time{}, false
		}
		f, _ := digits(rest[1:n])
		for i := n - 1; i < 9; i++ {
			f *= 10
		}
		nsec = f
		rest = rest[n:]
	}
	loc, off := time.UTC, 0
	switch {
	case len(rest) == 0:
		loc = time.Local
	case len(rest) == 1 && rest[0] == 'Z':
	case rest[0] == '+' || rest[0] == '-':
		var oh, om int
		var okh, okm bool
		switch {
		case len(rest) == 6 && rest[3] == ':':
			oh, okh = digits(rest[1:3])
			om, okm = digits(rest[4:6])
		case len(rest) == 5:
			oh, okh = digits(rest[1:3])
			om, okm = digits(rest[3:5])
		}
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		off = (oh*60 + om) * 60
		if rest[0] == '-' {
			off = -off
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc).Add(-time.Duration(off) * time.Second).UTC()
	return t, dateInRange(t) // an offset can push year 1 or 9999 out of range
}

// digits parses a non-empty string of ASCII digits.
func digits[S string | []byte](s S) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) > 0
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// FormatDate formats t in UTC the way jupyter_client sends dates:
// "2006-01-02T15:04:05.000123Z", with the fraction in microseconds
// (truncated) and omitted when it is zero, as Python's isoformat omits it.
// Python cannot represent years outside 1–9999; Encode refuses them.
func FormatDate(t time.Time) string {
	var buf [32]byte
	return string(appendDate(buf[:0], t))
}

func appendDate(b []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y >= 0 && y <= 9999 {
		// What AppendFormat(b, "2006-01-02T15:04:05") writes, without
		// parsing the layout: dates are in every message.
		_, mo, d := t.Date()
		h, mi, sec := t.Clock()
		b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
			byte('0'+mo/10), byte('0'+mo%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
			byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
			byte('0'+sec/10), byte('0'+sec%10))
	} else {
		b = t.AppendFormat(b, "2006-01-02T15:04:05")
	}
	if us := t.Nanosecond() / 1000; us != 0 {
		b = append(b, '.',
			byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
			byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10))
	}
	return append(b, 'Z')
}

// dateInRange reports whether Python can represent t (years 1–9999).
func dateInRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

// ExtractDates returns a copy of v in which every string that ParseDate
// accepts is replaced by its time, recursively through []any and
// map[string]any, like jupyter_client's extract_dates. v itself is not
// modified. Other values are returned as they are.
func ExtractDates(v any) any {
	switch v := v.(type) {
	case string:
		if t, ok := ParseDate(v); ok {
			return t
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = ExtractDates(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = ExtractDates(e)
		}
		return out
	}
	return v
}
