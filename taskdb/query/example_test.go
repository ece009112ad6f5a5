package query_test

import (
	"fmt"
	"time"

	"github.com/taskhub/taskhub/taskdb/query"
)

func Example() {
	f, err := query.ParseJSON([]byte(`{"completed": null, "header.msg_type": {"$in": ["apply_request", "execute_request"]}}`))
	if err != nil {
		panic(err)
	}
	rec := map[string]any{
		"msg_id":    "m1",
		"header":    map[string]any{"msg_type": "apply_request"},
		"submitted": time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		"completed": nil,
	}
	fmt.Println(f.Match(rec))
	fmt.Println(f)
	// Output:
	// true
	// {"completed":{"$eq":null},"header.msg_type":{"$in":["apply_request","execute_request"]}}
}

func ExampleParse_error() {
	_, err := query.Parse(map[string]any{"submitted": map[string]any{"$mod": []any{int64(3)}}})
	fmt.Println(err)
	// Output:
	// invalid query: field "submitted": $mod needs [divisor, remainder]
}
