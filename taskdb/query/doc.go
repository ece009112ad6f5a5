// Package query compiles MongoDB-style query documents into filters and
// matches them against task records.
//
// # Value model
//
// Documents and operands hold nil, bool, int64, float64, string,
// time.Time (UTC, microsecond precision), []byte, []any and
// map[string]any. Parse converts common Go types with Normalize. Backends
// with their own record layout implement Doc and call MatchDoc.
//
// # Semantics
//
// Semantics follow MongoDB, with one deliberate exception: null counts as
// absent. {f: null} and {f: {$exists: false}} both match a null or missing
// f; {$exists: true} and {$ne: null} match a present, non-null f.
//
//   - A plain value {f: v} is equality ($eq). A document value is equality
//     with that document (key order does not matter); a document whose keys
//     start with $ is a set of operators, all of which must hold.
//   - $eq, $ne, $in, $nin, $all: on an array field, equality holds if the
//     array equals the operand or any element does.
//   - $lt, $lte, $gt, $gte compare only within one type class (numbers,
//     strings, times as instants, bools, byte strings). Across classes,
//     against null, arrays or documents, and with NaN they do not match;
//     they never fail.
//   - $mod [d, r] matches numbers (floats truncated) with n % d == r.
//   - $regex (with $options i, m, s, x) matches strings, using RE2 syntax.
//   - $size n matches arrays of n elements; $elemMatch matches arrays with
//     an element satisfying an operator document or a query document.
//   - $not inverts an operator document; $and, $or, $nor combine query
//     documents at the top level (or inside $elemMatch).
//   - Dotted paths (header.msg_type) descend into documents; on the way a
//     numeric part indexes an array (tags.0) and any other part fans out
//     into the array's document elements (tags.k).
//
// Malformed queries are rejected by Parse with a *SyntaxError, which wraps
// ErrInvalid and names the field and operator at fault.
package query
