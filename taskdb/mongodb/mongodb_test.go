package mongodb

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
)

func TestConformance(t *testing.T) {
	serverURI(t) // skip once, not in every subtest
	dbtest.Run(t, func(t *testing.T) taskdb.DB { return open(t, Options{}) })
}
