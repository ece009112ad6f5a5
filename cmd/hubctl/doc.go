// Hubctl queries and controls a running taskhub hub (or an ipyparallel 7.1
// controller) through its client connection file.
//
// Usage:
//
//	hubctl [--file F] [--timeout D] <command> [flags] [args]
//
// Commands:
//
//	history [--limit N]                        msg_ids of recorded tasks, newest last
//	query '<json>' [--keys a,b] [--format F]   task records matching a MongoDB-style query
//	result <msg_id>...                         status and result of tasks
//	status [--verbose]                         engines and queue counts
//	purge <msg_id>... | --all | --engine N     drop completed task records
//	resubmit <msg_id>...                       run tasks again
//	watch [--interval D] [--count N]           live view of engines, pending, completed, tasks/s
//	shutdown                                   stop the hub
//
// The connection file is --file, else $TASKHUB_CLIENT_FILE, else
// ipcontroller-client.json in $TASKHUB_CONNECTION_DIR or the hub's default
// connection directory. Every request is bounded by --timeout (default 5s):
// an unreachable hub gives a clear error, never a hang.
//
// Exit status: 0 success; 1 failure, including errors from the hub, which
// are printed as "ename: evalue"; 2 bad usage.
package main
