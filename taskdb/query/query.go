package query

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error Parse, ParseJSON and the backends'
// projection checks return for a malformed query.
var ErrInvalid = errors.New("invalid query")

// SyntaxError describes what is wrong with a query. It wraps ErrInvalid.
type SyntaxError struct {
	Field string // dotted path at fault; empty at the top level
	Op    string // operator at fault, if any
	Msg   string
}

func (e *SyntaxError) Error() string {
	var b strings.Builder
	b.WriteString("invalid query: ")
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *SyntaxError) Unwrap() error { return ErrInvalid }

func syntaxErr(field, op, format string, args ...any) error {
	return &SyntaxError{Field: field, Op: op, Msg: fmt.Sprintf(format, args...)}
}

// Filter is a compiled query. It is immutable and safe for concurrent use.
type Filter struct {
	root *docNode
}

// Parse compiles a MongoDB-style query document. Values must be in the
// value model (see Normalize; common Go types are converted). Every error
// wraps ErrInvalid and names the field and operator at fault.
func Parse(doc map[string]any) (*Filter, error) {
	root, err := parseDoc(doc, 0)
	if err != nil {
		return nil, err
	}
	return &Filter{root: root}, nil
}

// MustParse is ParseJSON for tests and benchmarks: it panics on error.
func MustParse(s string) *Filter {
	f, err := ParseJSON([]byte(s))
	if err != nil {
		panic(err)
	}
	return f
}

// Match reports whether doc satisfies the filter. A nil filter matches
// every document, like {}.
func (f *Filter) Match(doc map[string]any) bool { return f == nil || f.root.match(doc) }

// MatchDoc reports whether d satisfies the filter.
func (f *Filter) MatchDoc(d Doc) bool { return f == nil || f.root.match(d) }

// node is a compiled query document or logical operator.
type node interface {
	match(doc any) bool
	write(w *writer)
}

// docNode is a query document: all of its entries must match.
type docNode struct {
	entries []entry // sorted by key
}

type entry struct {
	key string
	n   node
}

func (d *docNode) match(doc any) bool {
	for _, e := range d.entries {
		if !e.n.match(doc) {
			return false
		}
	}
	return true
}

// logicNode is $and, $or or $nor over query documents.
type logicNode struct {
	op   string
	kids []*docNode
}

func (l *logicNode) match(doc any) bool {
	switch l.op {
	case "$and":
		for _, k := range l.kids {
			if !k.match(doc) {
				return false
			}
		}
		return true
	case "$or":
		for _, k := range l.kids {
			if k.match(doc) {
				return true
			}
		}
		return false
	default: // $nor
		for _, k := range l.kids {
			if k.match(doc) {
				return false
			}
		}
		return true
	}
}

// fieldNode holds the conditions on one dotted path; all must hold.
type fieldNode struct {
	path  string
	parts []string
	conds []cond // sorted by name
}

// cond is one operator on a field: an op evaluated over every value the
// path resolves to, or ($not) a conjunction of conds; neg inverts it.
type cond struct {
	name string // operator as written: $eq, $ne, $regex, $not...
	neg  bool
	o    op
	sub  []cond
}

func (f *fieldNode) match(doc any) bool {
	for i := range f.conds {
		if !f.eval(doc, &f.conds[i]) {
			return false
		}
	}
	return true
}

func (f *fieldNode) eval(doc any, c *cond) bool {
	var r bool
	if c.o != nil {
		r = walk(doc, f.parts, c.o)
	} else {
		r = true
		for i := range c.sub {
			if !f.eval(doc, &c.sub[i]) {
				r = false
				break
			}
		}
	}
	return r != c.neg
}

// walk resolves parts from v and reports whether o holds for some value
// the path reaches. On the way, a numeric part indexes an array and any
// other part fans out into the array's document elements, so the work is
// linear in the document; a missing value is tested as nil.
func walk(v any, parts []string, o op) bool {
	if len(parts) == 0 {
		return o.test(v)
	}
	switch x := v.(type) {
	case map[string]any:
		return walk(x[parts[0]], parts[1:], o)
	case Doc:
		c, _ := x.Lookup(parts[0])
		return walk(c, parts[1:], o)
	case []any:
		if i, err := strconv.Atoi(parts[0]); err == nil {
			if i >= 0 && i < len(x) {
				return walk(x[i], parts[1:], o)
			}
			return o.test(nil)
		}
		reached := false
		for _, e := range x {
			if isDoc(e) {
				reached = true
				if walk(e, parts, o) {
					return true
				}
			}
		}
		return !reached && o.test(nil)
	}
	return o.test(nil)
}

func parseDoc(m map[string]any, depth int) (*docNode, error) {
	if depth > maxDepth {
		return nil, syntaxErr("", "", "nested deeper than %d levels", maxDepth)
	}
	d := &docNode{entries: make([]entry, 0, len(m))}
	for _, k := range sortedKeys(m) {
		v := m[k]
		var n node
		var err error
		if strings.HasPrefix(k, "$") {
			n, err = parseLogic(k, v, depth)
		} else {
			n, err = parseField(k, v, depth)
		}
		if err != nil {
			return nil, err
		}
		d.entries = append(d.entries, entry{key: k, n: n})
	}
	return d, nil
}

func parseLogic(op string, v any, depth int) (node, error) {
	switch op {
	case "$and", "$or", "$nor":
	default:
		if isFieldOp(op) {
			return nil, syntaxErr("", op, "must be applied to a field, not used at the top level")
		}
		return nil, syntaxErr("", op, "is not a known operator")
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, syntaxErr("", op, "needs a non-empty array of query documents")
	}
	l := &logicNode{op: op, kids: make([]*docNode, len(arr))}
	for i, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, syntaxErr("", op, "needs a non-empty array of query documents, element %d is %s", i, typeName(e))
		}
		kid, err := parseDoc(m, depth+1)
		if err != nil {
			return nil, err
		}
		l.kids[i] = kid
	}
	return l, nil
}

func parseField(path string, v any, depth int) (node, error) {
	parts := strings.Split(path, ".")
	if slices.Contains(parts, "") {
		return nil, syntaxErr(path, "", "is not a valid dotted path")
	}
	f := &fieldNode{path: path, parts: parts}
	if m, ok := v.(map[string]any); ok && isOpDoc(m) {
		conds, err := parseOps(path, m, depth)
		if err != nil {
			return nil, err
		}
		f.conds = conds
		return f, nil
	}
	c, err := parseOp(path, "$eq", v, nil, depth)
	if err != nil {
		return nil, err
	}
	f.conds = []cond{c}
	return f, nil
}

// isOpDoc reports whether m's keys are operators. A document mixing
// operators and plain keys is reported as an operator document, so that
// parseOps rejects it.
func isOpDoc(m map[string]any) bool {
	for k := range m {
		if strings.HasPrefix(k, "$") {
			return true
		}
	}
	return false
}

func parseOps(path string, m map[string]any, depth int) ([]cond, error) {
	if depth > maxDepth {
		return nil, syntaxErr(path, "", "nested deeper than %d levels", maxDepth)
	}
	conds := make([]cond, 0, len(m))
	for _, k := range sortedKeys(m) {
		if !strings.HasPrefix(k, "$") {
			return nil, syntaxErr(path, "", "mixes operators and the plain key %q", k)
		}
		if k == "$options" {
			if _, ok := m["$regex"]; !ok {
				return nil, syntaxErr(path, k, "needs $regex")
			}
			continue
		}
		c, err := parseOp(path, k, m[k], m, depth)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	return conds, nil
}

// isFieldOp reports whether op is an operator that applies to a field.
func isFieldOp(op string) bool {
	switch op {
	case "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$all",
		"$mod", "$exists", "$regex", "$options", "$size", "$elemMatch", "$not":
		return true
	}
	return false
}

// parseOp compiles operator op with argument arg on path; all holds the
// operator document it came from (for $regex's $options).
func parseOp(path, op string, arg any, all map[string]any, depth int) (cond, error) {
	c := cond{name: op}
	switch op {
	case "$eq", "$ne", "$lt", "$lte", "$gt", "$gte":
		v, err := Normalize(arg)
		if err != nil {
			return c, syntaxErr(path, op, "%v", err)
		}
		c.o = &cmpOp{kind: op, arg: v}
		if op == "$ne" {
			c.neg = true
			c.o = &cmpOp{kind: "$eq", arg: v}
		}
	case "$in", "$nin":
		vals, err := operandList(path, op, arg)
		if err != nil {
			return c, err
		}
		c.o = newInOp(vals)
		c.neg = op == "$nin"
	case "$all":
		vals, err := operandList(path, op, arg)
		if err != nil {
			return c, err
		}
		c.o = newAllOp(vals)
	case "$mod":
		o, err := parseMod(path, arg)
		if err != nil {
			return c, err
		}
		c.o = o
	case "$exists":
		switch x := arg.(type) {
		case bool:
			c.o = &existsOp{want: x}
		default:
			switch n := normalizeNumber(arg).(type) {
			case int64:
				c.o = &existsOp{want: n != 0}
			case float64:
				c.o = &existsOp{want: n != 0}
			default:
				return c, syntaxErr(path, op, "needs true or false, got %s", typeName(arg))
			}
		}
	case "$regex":
		o, err := parseRegex(path, arg, all["$options"])
		if err != nil {
			return c, err
		}
		c.o = o
	case "$size":
		n, ok := integral(normalizeNumber(arg))
		if f, isFloat := normalizeNumber(arg).(float64); isFloat && float64(n) != f {
			ok = false
		}
		if !ok || n < 0 {
			return c, syntaxErr(path, op, "needs a non-negative integer, got %v", arg)
		}
		c.o = &sizeOp{n: n}
	case "$elemMatch":
		m, ok := arg.(map[string]any)
		if !ok {
			return c, syntaxErr(path, op, "needs a query document, got %s", typeName(arg))
		}
		o := &elemMatchOp{}
		if isOpDoc(m) && !hasLogic(m) {
			conds, err := parseOps(path, m, depth+1)
			if err != nil {
				return c, err
			}
			o.field = &fieldNode{path: path, conds: conds}
		} else {
			d, err := parseDoc(m, depth+1)
			if err != nil {
				return c, err
			}
			o.doc = d
		}
		c.o = o
	case "$not":
		m, ok := arg.(map[string]any)
		if !ok || len(m) == 0 || !isOpDoc(m) {
			return c, syntaxErr(path, op, "needs a non-empty operator document, got %s", typeName(arg))
		}
		sub, err := parseOps(path, m, depth+1)
		if err != nil {
			return c, err
		}
		c.neg, c.sub = true, sub
	case "$and", "$or", "$nor":
		return c, syntaxErr(path, op, "is only allowed at the top level of a query document")
	default:
		return c, syntaxErr(path, op, "is not a known operator")
	}
	return c, nil
}

func hasLogic(m map[string]any) bool {
	for k := range m {
		switch k {
		case "$and", "$or", "$nor":
			return true
		}
	}
	return false
}

// normalizeNumber converts Go integer and float types to int64/float64,
// leaving other values alone.
func normalizeNumber(v any) any {
	switch v.(type) {
	case bool, string, nil:
		return v
	}
	if n, err := Normalize(v); err == nil {
		return n
	}
	return v
}

func operandList(path, op string, arg any) ([]any, error) {
	v, err := Normalize(arg)
	if err != nil {
		return nil, syntaxErr(path, op, "%v", err)
	}
	vals, ok := v.([]any)
	if !ok {
		return nil, syntaxErr(path, op, "needs an array, got %s", typeName(arg))
	}
	return vals, nil
}

func parseMod(path string, arg any) (op, error) {
	v, _ := Normalize(arg)
	arr, ok := v.([]any)
	if !ok || len(arr) != 2 {
		return nil, syntaxErr(path, "$mod", "needs [divisor, remainder]")
	}
	d, dok := integral(arr[0])
	r, rok := integral(arr[1])
	if !dok || !rok {
		return nil, syntaxErr(path, "$mod", "needs [divisor, remainder] as numbers")
	}
	if d == 0 {
		return nil, syntaxErr(path, "$mod", "divisor must not be 0")
	}
	return &modOp{d: d, r: r, arg: arr}, nil
}

func parseRegex(path string, pattern, options any) (op, error) {
	p, ok := pattern.(string)
	if !ok {
		return nil, syntaxErr(path, "$regex", "needs a string pattern, got %s", typeName(pattern))
	}
	opts := ""
	if options != nil {
		if opts, ok = options.(string); !ok {
			return nil, syntaxErr(path, "$options", "needs a string, got %s", typeName(options))
		}
	}
	flags := ""
	src := p
	for _, r := range opts {
		switch r {
		case 'i', 'm', 's':
			if !strings.ContainsRune(flags, r) {
				flags += string(r)
			}
		case 'x':
			src = stripExtended(src)
		default:
			return nil, syntaxErr(path, "$options", "has unknown flag %q (want i, m, s or x)", r)
		}
	}
	if flags != "" {
		src = "(?" + flags + ")" + src
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, syntaxErr(path, "$regex", "does not compile: %v", err)
	}
	return &regexOp{re: re, pattern: p, options: opts}, nil
}

// stripExtended removes the whitespace and #-comments that the x option
// allows, except when escaped or inside a character class.
func stripExtended(p string) string {
	var b strings.Builder
	inClass, comment := false, false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case comment:
			comment = c != '\n'
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			i++
			b.WriteByte(p[i])
		case inClass:
			inClass = c != ']'
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
		case c == '#':
			comment = true
		case c == ' ', c == '\t', c == '\n', c == '\r', c == '\f', c == '\v':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case map[string]any:
		return "a document"
	}
	return fmt.Sprintf("%T", v)
}
