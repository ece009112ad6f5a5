package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/taskhub/taskhub/hub/client"
	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
)

// seededDB holds n completed task records, each with two small buffers
// and one result buffer, like apply requests.
func seededDB(b *testing.B, n int) taskdb.DB {
	b.Helper()
	db := dictdb.New(dictdb.Options{}) // unlimited
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("msg-%06d", i)
		rec := taskdb.EmptyRecord(id)
		rec["header"] = map[string]any{"msg_id": id, "msg_type": "apply_request", "session": "s", "username": "u", "version": "5.3", "date": t0}
		rec["submitted"] = t0.Add(time.Duration(i) * time.Millisecond)
		rec["started"] = t0.Add(time.Duration(i)*time.Millisecond + 100*time.Microsecond)
		rec["completed"] = t0.Add(time.Duration(i)*time.Millisecond + time.Millisecond)
		rec["engine_uuid"] = "engine-0"
		rec["queue"] = "task"
		rec["result_content"] = map[string]any{"status": "ok"}
		rec["buffers"] = [][]byte{make([]byte, 200), make([]byte, 40)}
		rec["result_buffers"] = [][]byte{make([]byte, 64)}
		if err := db.AddRecord(b.Context(), id, rec); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkRealHub measures the client against the in-process hub on
// 127.0.0.1: one request at a time, requests from several goroutines
// sharing one Client, and db_request decoding with buffers re-sliced.
func BenchmarkRealHub(b *testing.B) {
	for _, packer := range []string{"msgpack", "json"} {
		const n = 1000
		cf, _ := startHub(b, packer, seededDB(b, n))
		c, err := client.Dial(b.Context(), cf, client.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("packer="+packer+"/QueueStatus", func(b *testing.B) {
			for b.Loop() {
				if _, err := c.QueueStatus(b.Context(), nil, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
		b.Run("packer="+packer+"/QueueStatus-parallel", func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.QueueStatus(b.Context(), nil, false); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
		b.Run(fmt.Sprintf("packer=%s/DBQuery-records=%d", packer, n), func(b *testing.B) {
			q := map[string]any{"completed": map[string]any{"$ne": nil}}
			keys := []string{"msg_id", "submitted", "completed", "engine_uuid", "buffers", "result_buffers"}
			for b.Loop() {
				recs, err := c.DBQuery(b.Context(), q, keys)
				if err != nil || len(recs) != n {
					b.Fatalf("%d records, %v", len(recs), err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
		c.Close()
	}
}
