package mqtt

import (
	"strings"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/securestreams/ss/policy"
)

func TestIsJobsTopic(t *testing.T) {
	for topic, want := range map[string]bool{
		"$aws/things/dev1/jobs/get":            true,
		"$aws/things/dev1/jobs/start-next":     true,
		"$aws/things/dev1/jobs/job-7/get":      true,
		"$aws/things/dev1/jobs/job-7/update":   true,
		"$aws/things/dev1/jobs/notify":         false,
		"$aws/things/dev1/jobs/notify-next":    false,
		"$aws/things/dev1/jobs/get/accepted":   false,
		"$aws/things/dev1/shadow/update":       false,
		"aws/things/dev1/jobs/get":             false,
		"$aws/things/dev1/jobs/job-7/x/update": false,
	} {
		if got := isJobsTopic(topic); got != want {
			t.Errorf("%s: %v", topic, got)
		}
	}
}

// TestJobs: a Jobs update request gets its accepted/rejected response the
// way a Shadow request does.
func TestJobs(t *testing.T) {
	f := newFixture(t)
	err := f.broker.Server.Subscribe("$aws/things/+/jobs/+/update", 98, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		topic, body := pk.TopicName, string(pk.Payload)
		go func() {
			suffix := "/accepted"
			if strings.Contains(body, "FAILED") {
				suffix = "/rejected"
			}
			f.broker.Publish(topic+suffix, []byte("re:"+body), false, 1)
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	st := streamtype("jobs", f.broker.Addr, func(st *policy.Streamtype) {
		st.AWSIoT, st.MQTTQoS = true, 1
		st.Metadata = []*policy.MetadataItem{{Name: "thing"}, {Name: "job"}, {Name: "resp"}}
		st.MQTTTopic = "$aws/things/${thing}/jobs/${job}/update"
		st.MQTTSubscribe = "${resp}"
	})
	r := start(f.p, f.env, st, map[string]string{"thing": "dev1", "job": "job-7"})
	r.sink.waitN(t, 1)
	r.tx.send(`{"status":"SUCCEEDED"}`)
	evs := r.sink.waitFor(t, "response", func(evs []string) bool { return count(evs, "rx(") == 1 && count(evs, "QOS_ACK") == 1 })
	got := strings.Join(evs, " ")
	if want := `meta(resp=$aws/things/dev1/jobs/job-7/update/accepted) rx(SOM|EOM,"re:{\"status\":\"SUCCEEDED\"}")`; !strings.Contains(got, want) {
		t.Fatalf("events %v\nlack %s", evs, want)
	}
	r.stop(t)
	subs := f.broker.Subscribes()
	if len(subs) < 2 || subs[0] != "$aws/things/dev1/jobs/job-7/update/accepted" || subs[1] != "$aws/things/dev1/jobs/job-7/update/rejected" {
		t.Fatalf("subscribes %v", subs)
	}
}
