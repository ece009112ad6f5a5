package main

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/taskhub/taskhub/config"
	"github.com/taskhub/taskhub/hub"
	"github.com/taskhub/taskhub/wire/transport"
)

// Every hub setting reaches hub.Config: each gets a distinct value here.
func TestHubConfig(t *testing.T) {
	c := config.Default()
	c.Listen = config.Listen{Interface: "10.0.0.1", Registration: 1,
		Client: config.ClientPorts{Control: 2, Mux: 3, Task: 4, IOPub: 5, Notification: 6, Broadcast: 7},
		Engine: config.EnginePorts{Control: 8, Mux: 9, Task: 10, IOPub: 11, HBPing: 12, HBPong: 13, Broadcast: 14}}
	c.ConnectionDir = "/conn"
	c.Session = config.Session{Key: "k", SignatureScheme: "hmac-sha512", Packer: "json", ReplayHistory: 1234}
	c.DB.Queue = 77
	c.Scheduler = config.Scheduler{Scheme: "twobin", HWM: 3}
	c.Heartbeat = config.Heartbeat{Period: time.Second, MaxMisses: 4}
	c.Engine = config.Engine{DeadTaskGrace: 2 * time.Second, RegistrationTimeout: 9 * time.Second}
	c.Transport = config.Transport{MaxMessageSize: 1000, MaxFrameSize: 500, HandshakeTimeout: 3 * time.Second, WriteTimeout: 4 * time.Second, MaxSendQueue: 600}
	c.ShutdownTimeout = 6 * time.Second
	c.TaskMemory = 55
	log := slog.New(slog.DiscardHandler)
	got := hubConfig(c, log)
	got.Transport.Logger = nil
	want := hub.Config{
		IP: "10.0.0.1",
		Ports: hub.Ports{Registration: 1, ClientControl: 2, ClientMux: 3, ClientTask: 4, ClientIOPub: 5, Notification: 6, ClientBroadcast: 7,
			EngineControl: 8, EngineMux: 9, EngineTask: 10, EngineIOPub: 11, HBPing: 12, HBPong: 13, EngineBroadcast: 14},
		ConnectionDir: "/conn", Key: "k", SignatureScheme: "hmac-sha512", Packer: "json", ReplayHistory: 1234,
		Scheme: "twobin", HWM: 3, HeartbeatPeriod: time.Second, HeartbeatMaxMisses: 4,
		DeadEngineGrace: 2 * time.Second, RegistrationTimeout: 9 * time.Second,
		Transport: transport.Options{MaxFrameSize: 500, MaxMessageSize: 1000, HandshakeTimeout: 3 * time.Second, WriteTimeout: 4 * time.Second, MaxSendQueue: 600},
		DBQueue:   77, TaskMemory: 55, ShutdownTimeout: 6 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hubConfig:\n got %+v\nwant %+v", got, want)
	}
	// hwm 0 means unlimited, which hub.Config spells negative.
	c.Scheduler.HWM = 0
	if got := hubConfig(c, log).HWM; got >= 0 {
		t.Errorf("hwm 0 → HWM %d, want negative (unlimited)", got)
	}
	c.TaskMemory = 0
	if got := hubConfig(c, log).TaskMemory; got >= 0 {
		t.Errorf("task_memory 0 → TaskMemory %d, want negative (unlimited)", got)
	}
}
