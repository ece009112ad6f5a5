package dbtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// The benchmark workload, shared with bench/taskdb_vs_ipyparallel's
// Python driver: records built like ipyparallel's TaskDBTest (a header of
// six fields, content {a: 5}, one 100-byte buffer), submitted 1 ms apart,
// from Clients clients, run on Engines engines; every tenth record is
// pending, the others carry engine_uuid, started, completed and received.
const (
	Clients    = 100
	Engines    = 16
	BufferSize = 100
)

// Workload builds the benchmark's records.
type Workload struct {
	clients, engines []string
	buf              []byte
}

// NewWorkload returns the workload; its byte contents are pseudo-random
// but fixed.
func NewWorkload() *Workload {
	w := &Workload{buf: make([]byte, BufferSize)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range w.buf {
		w.buf[i] = byte(rng.Uint32())
	}
	for i := range Clients {
		w.clients = append(w.clients, fmt.Sprintf("%08x-%024x", i, i))
	}
	for i := range Engines {
		w.engines = append(w.engines, fmt.Sprintf("e%07x-%024x", i, i))
	}
	return w
}

// ID returns the msg_id of record i.
func (w *Workload) ID(i int) string { return fmt.Sprintf("%s_%d_%d", w.clients[i%Clients], 4242, i) }

// Client returns the client_uuid of record i.
func (w *Workload) Client(i int) string { return w.clients[i%Clients] }

// Submitted returns the submitted time of record i.
func (w *Workload) Submitted(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }

// Pending reports whether record i is pending: one in ten, of every
// client.
func (w *Workload) Pending(i int) bool { return (i+i/Clients)%10 == 0 }

// Record returns record i as the hub adds it: init_record's 22 keys.
func (w *Workload) Record(i int) taskdb.Record {
	id, client, sub := w.ID(i), w.Client(i), w.Submitted(i)
	buf := make([]byte, BufferSize)
	copy(buf, w.buf)
	buf[0], buf[1], buf[2] = byte(i), byte(i>>8), byte(i>>16)
	r := taskdb.Record{
		"msg_id":          id,
		"header":          map[string]any{"msg_id": id, "msg_type": "apply_request", "username": "bench", "session": client, "date": sub, "version": "5.3"},
		"metadata":        map[string]any{},
		"content":         map[string]any{"a": int64(5)},
		"buffers":         []any{buf},
		"submitted":       sub,
		"client_uuid":     client,
		"engine_uuid":     nil,
		"started":         nil,
		"completed":       nil,
		"resubmitted":     nil,
		"received":        nil,
		"result_header":   nil,
		"result_metadata": nil,
		"result_content":  nil,
		"result_buffers":  nil,
		"queue":           nil,
		"execute_input":   nil,
		"execute_result":  nil,
		"error":           nil,
		"stdout":          "",
		"stderr":          "",
	}
	if !w.Pending(i) {
		r["engine_uuid"] = w.engines[i%Engines]
		r["queue"] = "task"
		r["started"] = sub.Add(100 * time.Microsecond)
		r["completed"] = sub.Add(time.Millisecond)
		r["received"] = sub.Add(1100 * time.Microsecond)
	}
	return r
}

// Result returns the fields the hub updates when record i's reply
// arrives: result header, metadata and content plus a 100-byte result
// buffer.
func (w *Workload) Result(i int) taskdb.Record {
	done := w.Submitted(i).Add(time.Millisecond)
	eng := w.engines[i%Engines]
	buf := make([]byte, BufferSize)
	copy(buf, w.buf)
	return taskdb.Record{
		"engine_uuid":     eng,
		"started":         done.Add(-900 * time.Microsecond),
		"completed":       done,
		"received":        done.Add(100 * time.Microsecond),
		"result_header":   map[string]any{"msg_id": w.ID(i) + "r", "msg_type": "apply_reply", "username": "bench", "session": eng, "date": done, "version": "5.3"},
		"result_metadata": map[string]any{"status": "ok", "engine": eng, "started": done.Add(-900 * time.Microsecond), "dependencies_met": true},
		"result_content":  map[string]any{"status": "ok"},
		"result_buffers":  []any{buf},
	}
}

// sizes returns the database sizes to benchmark; 1M is skipped with
// -short.
func sizes() []int {
	if testing.Short() {
		return []int{100_000}
	}
	return []int{100_000, 1_000_000}
}

// Bench runs the shared benchmarks. open must return an empty DB that
// never culls (for DictDB: zero limits). For N of 100k and 1M records it
// reports, in domain units:
//
//	Add      records/s, cpu-ns/op   AddRecord of workload records (DB rebuilt every N)
//	Update   updates/s, cpu-ns/op   UpdateRecord with the result fields
//	Load     records/s (building the records included) and B/record (heap in use after loading N, per record)
//	Find/... ms/query, cpu-ns/op and hits/query for the hub's typical queries
//	History  ms/op, cpu-ns/op
func Bench(b *testing.B, open func(b *testing.B) taskdb.DB) {
	w := NewWorkload()
	for _, n := range sizes() {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			benchAdd(b, open, w, n)
			benchUpdate(b, open, w, n)
			// db is loaded by Load, or by the first query benchmark when
			// -bench skips Load.
			var db taskdb.DB
			defer func() {
				if db != nil {
					db.Close()
				}
			}()
			loaded := func(b *testing.B) taskdb.DB {
				if db == nil {
					db = load(b, open, w, n)
					runtime.GC()
				}
				return db
			}
			b.Run("Load", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					if db != nil {
						db.Close()
						db = nil
					}
					before := heapInUse()
					b.StartTimer()
					db = load(b, open, w, n)
					b.StopTimer()
					b.ReportMetric(float64(heapInUse()-before)/float64(n), "B/record")
					b.StartTimer()
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
			})
			benchQueries(b, loaded, w, n)
		})
	}
}

// cpuMeter measures the process CPU time spent inside a benchmark loop,
// excluding paused setup. On a shared machine, cpu-ns/op is steadier than
// wall time: it is the cost of one operation, garbage collection included.
type cpuMeter struct {
	spent, since time.Duration
	ok           bool
}

func startCPU() *cpuMeter {
	m := &cpuMeter{}
	m.since, m.ok = cpuTime()
	return m
}

func (m *cpuMeter) pause() {
	now, _ := cpuTime()
	m.spent += now - m.since
}

func (m *cpuMeter) resume() { m.since, _ = cpuTime() }

func (m *cpuMeter) report(b *testing.B) {
	if !m.ok {
		return
	}
	m.pause()
	b.ReportMetric(float64(m.spent.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// load returns a DB holding workload records 0..n-1.
func load(b *testing.B, open func(b *testing.B) taskdb.DB, w *Workload, n int) taskdb.DB {
	db := open(b)
	ctx := context.Background()
	for i := range n {
		rec := w.Record(i)
		if err := db.AddRecord(ctx, rec["msg_id"].(string), rec); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// poolSize is how many records or updates the write benchmarks prebuild
// and cycle through: enough to vary, few enough that the live heap is the
// DB's, as in the hub, not the benchmark's.
const poolSize = 1000

// pool prebuilds poolSize workload values outside the timer.
func pool(f func(int) taskdb.Record) []taskdb.Record {
	p := make([]taskdb.Record, poolSize)
	for i := range p {
		p[i] = f(i)
	}
	return p
}

func benchAdd(b *testing.B, open func(b *testing.B) taskdb.DB, w *Workload, n int) {
	b.Run("Add", func(b *testing.B) {
		// Record i is prebuilt record i%poolSize with its own msg_id and
		// submitted time, which the loop sets as the hub would.
		recs := pool(w.Record)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = w.ID(i)
		}
		ctx := context.Background()
		db, i := open(b), 0
		cpu := startCPU()
		for b.Loop() {
			if i == n {
				b.StopTimer()
				cpu.pause()
				db.Close()
				db, i = open(b), 0
				runtime.GC() // start clean, not inside the collection of the last DB
				cpu.resume()
				b.StartTimer()
			}
			rec := recs[i%poolSize]
			rec["msg_id"], rec["submitted"] = ids[i], w.Submitted(i)
			if err := db.AddRecord(ctx, ids[i], rec); err != nil {
				b.Fatal(err)
			}
			i++
		}
		cpu.report(b)
		db.Close()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

func benchUpdate(b *testing.B, open func(b *testing.B) taskdb.DB, w *Workload, n int) {
	b.Run("Update", func(b *testing.B) {
		updates := pool(w.Result) // update i is updates[i%poolSize]
		ids := make([]string, n)
		for i := range ids {
			ids[i] = w.ID(i)
		}
		ctx := context.Background()
		var db taskdb.DB
		i := n
		cpu := startCPU()
		for b.Loop() {
			if i == n {
				b.StopTimer()
				cpu.pause()
				if db != nil {
					db.Close()
				}
				db, i = load(b, open, w, n), 0
				runtime.GC() // start clean, not inside the collection the load began
				cpu.resume()
				b.StartTimer()
			}
			if err := db.UpdateRecord(ctx, ids[i], updates[i%poolSize]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		cpu.report(b)
		db.Close()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	})
}

func benchQueries(b *testing.B, loaded func(*testing.B) taskdb.DB, w *Workload, n int) {
	mid := w.Submitted(n / 2)
	ids100 := make([]any, 100)
	for i := range ids100 {
		ids100[i] = w.ID(i * (n / 100))
	}
	for _, c := range []struct {
		name string
		q    map[string]any
		keys []string
	}{
		{"pending", map[string]any{"completed": nil}, nil},
		{"client_pending", map[string]any{"client_uuid": w.Client(7), "completed": nil}, nil},
		{"msg_id", map[string]any{"msg_id": w.ID(n / 3)}, nil},
		{"msg_id_in_100", map[string]any{"msg_id": map[string]any{"$in": ids100}}, nil},
		{"msg_id_keys", map[string]any{"msg_id": w.ID(n / 3)}, []string{"msg_id", "submitted"}},
		{"submitted_lt_mid_keys", map[string]any{"submitted": map[string]any{"$lt": mid}}, []string{"msg_id", "submitted"}},
		{"engine_done_scan", map[string]any{"engine_uuid": map[string]any{"$regex": "^e0000003"}, "completed": map[string]any{"$ne": nil}}, []string{"msg_id"}},
	} {
		f, err := query.Parse(c.q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Find/"+c.name, func(b *testing.B) {
			db, ctx := loaded(b), context.Background()
			var hits int
			cpu := startCPU()
			for b.Loop() {
				rs, err := db.FindRecords(ctx, f, c.keys)
				if err != nil {
					b.Fatal(err)
				}
				hits = len(rs)
			}
			cpu.report(b)
			b.ReportMetric(float64(hits), "hits/query")
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/query")
		})
	}
	b.Run("History", func(b *testing.B) {
		db, ctx := loaded(b), context.Background()
		var got int
		cpu := startCPU()
		for b.Loop() {
			h, err := db.History(ctx)
			if err != nil {
				b.Fatal(err)
			}
			got = len(h)
		}
		cpu.report(b)
		if got != n {
			b.Fatalf("history has %d ids, want %d", got, n)
		}
		b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
	})
}
