package nodb_test

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/nodb"
)

func TestBlackHole(t *testing.T) {
	dbtest.RunBlackHole(t, func(*testing.T) taskdb.DB { return nodb.New() })
}
