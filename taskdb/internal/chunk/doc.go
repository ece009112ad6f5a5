// Package chunk hands out the Docs, arrays and byte strings of one read
// from a few shared allocations instead of allocating each on its own: a
// record is a dozen small objects, and allocating and collecting those
// dominates large reads. The backends' decoders use it.
package chunk
