package dictdb

import "github.com/taskhub/taskhub/taskdb/internal/chunk"

// maxDepth bounds the nesting of stored values.
const maxDepth = 100

// thawer carves the values of one read out of a few chunks (see
// chunk.Alloc): a record is a dozen small objects, and allocating and
// collecting those one by one dominated large reads.
type thawer struct {
	chunk.Alloc
	sink byte // keeps store.touch's loads
}
