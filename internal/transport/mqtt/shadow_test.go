package mqtt

import (
	"strings"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/securestreams/ss/policy"
)

// TestShadow: an AWS IoT Shadow update subscribes to accepted/rejected
// before publishing, delivers the response with its topic in the metadata
// item named by mqtt_subscribe, then unsubscribes both.
func TestShadow(t *testing.T) {
	f := newFixture(t)
	err := f.broker.Server.Subscribe("$aws/things/+/shadow/+", 99, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		topic, body := pk.TopicName, string(pk.Payload)
		go func() {
			suffix := "/accepted"
			if strings.Contains(body, "bad") {
				suffix = "/rejected"
			}
			f.broker.Publish(topic+suffix, []byte("re:"+body), false, 1)
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	st := streamtype("shadow", f.broker.Addr, func(st *policy.Streamtype) {
		st.AWSIoT, st.MQTTQoS = true, 1
		st.Metadata = []*policy.MetadataItem{{Name: "thing"}, {Name: "resp"}}
		st.MQTTTopic = "$aws/things/${thing}/shadow/update"
		st.MQTTSubscribe = "${resp}"
	})
	r := start(f.p, f.env, st, map[string]string{"thing": "dev1"})
	r.sink.waitN(t, 1)
	r.tx.send(`{"state":{}}`)
	r.sink.waitFor(t, "response", func(evs []string) bool { return count(evs, "rx(") == 1 && count(evs, "QOS_ACK") == 1 })
	r.tx.send(`bad`)
	evs := r.sink.waitFor(t, "rejection", func(evs []string) bool { return count(evs, "rx(") == 2 && count(evs, "QOS_ACK") == 2 })
	got := strings.Join(evs, " ")
	for _, want := range []string{
		`meta(resp=$aws/things/dev1/shadow/update/accepted) rx(SOM|EOM,"re:{\"state\":{}}")`,
		`meta(resp=$aws/things/dev1/shadow/update/rejected) rx(SOM|EOM,"re:bad")`,
		"QOS_ACK_REMOTE(1)", "QOS_ACK_REMOTE(2)",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("events %v\nlack %s", evs, want)
		}
	}
	r.stop(t)
	subs, unsubs := f.broker.Subscribes(), f.broker.Unsubscribes()
	want := []string{"$aws/things/dev1/shadow/update/accepted", "$aws/things/dev1/shadow/update/rejected"}
	if len(subs) != 4 || subs[0] != want[0] || subs[1] != want[1] || len(unsubs) != 4 || unsubs[0] != want[0] {
		t.Fatalf("subscribes %v unsubscribes %v", subs, unsubs)
	}
}
