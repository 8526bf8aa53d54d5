package kit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/internal/kit"
)

// natsElection bounds how long one publish may wait for a new stream
// leader after a node was killed: seconds when idle, but 45 s were seen
// run out while two other 3-node clusters shared the 2 cores (go test
// -count=5 ./...), the nodes starved of the CPU their raft heartbeats need.
const natsElection = 2 * time.Minute

func TestNATSClusterKeepsAnR3StreamThroughAKilledAndRestartedNode(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a 3-node nats-server cluster")
	}
	c := kit.StartNATSCluster(t, kit.DeployNATSConfs()...)
	for i, want := range []string{"n1", "n2", "n3"} {
		if got := c.Name(i); got != want {
			t.Errorf("node %d is named %q, want %q from its configuration file", i+1, got, want)
		}
	}
	js := kit.Connect(t, c.ClientURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond)).JS
	// The whole test: three kills, each followed by a restart that may wait
	// natsReadyTimeout on a loaded machine. One publish has less (below).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KIT", Subjects: []string{"kit.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	// publish retries with the same message id, as a client must while a
	// new stream leader is elected.
	publish := func(id string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, natsElection)
		defer cancel()
		for {
			_, err := js.Publish(ctx, "kit.x", []byte(id), jetstream.WithMsgID(id))
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %s: no stream leader took it within %v: %v\n%s", id, natsElection, err, c.Tails(20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	const each = 20
	for round := range c.Size() {
		for i := range each {
			publish(fmt.Sprintf("r%d-%d", round, i))
		}
		c.Kill(round)
		for i := range each {
			publish(fmt.Sprintf("r%d-down-%d", round, i))
		}
		c.Restart(round)
	}
	st, err := js.Stream(ctx, "KIT")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(2 * each * c.Size()); info.State.Msgs != want {
		t.Errorf("the stream holds %d messages after each node was killed once, want %d, each once", info.State.Msgs, want)
	}
}
