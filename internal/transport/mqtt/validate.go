package mqtt

import (
	"fmt"
	"strings"

	"github.com/securestreams/ss/internal/connmgr"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// maxString is the MQTT 3.1.1 limit of a UTF-8 string field (§1.5.3).
const maxString = 65535

// CheckMetadata is the mqtt check of a metadata value, run by the stream at
// Create and SetMetadata (registered in the root's protocols.go): a value
// substituted into a topic or topic filter (mqtt_topic, mqtt_subscribe,
// mqtt_will_topic, mqtt_birth_topic) must be valid UTF-8 with no NUL and no
// wildcard ('+', '#': wildcards may only come from the policy's own text)
// and at most 65535 bytes; a value in the endpoint must be usable there
// (docs/security-validation.md). Will and birth messages are payload.
func CheckMetadata(st *policy.Streamtype, name, value string) error {
	if err := transport.CheckEndpointMetadata(st, name, value); err != nil {
		return err
	}
	i := st.MetadataIndex(name)
	if i < 0 {
		return nil
	}
	for _, f := range []struct {
		t     *policy.Template
		field string
	}{{st.MQTTTopicTmpl, "mqtt_topic"}, {st.MQTTSubscribeTmpl, "mqtt_subscribe"},
		{st.MQTTWillTopicTmpl, "mqtt_will_topic"}, {st.MQTTBirthTopicTmpl, "mqtt_birth_topic"}} {
		if !uses(f.t, i) {
			continue
		}
		if err := CheckTopicValue(value, f.field); err != nil {
			return transport.WithItem(err, name)
		}
	}
	return nil
}

// CheckTopicValue checks a value substituted into a topic or filter.
func CheckTopicValue(value, field string) error {
	if err := transport.CheckUTF8Text(value, field, maxString); err != nil {
		return err
	}
	if j := strings.IndexAny(value, "+#"); j >= 0 {
		return &transport.ValueError{Field: field, Reason: fmt.Sprintf("%q at byte %d (a wildcard)", value[j], j)}
	}
	// MQTT 3.1.1 §1.5.3: control characters SHOULD NOT appear, and brokers
	// may disconnect for them.
	for j := 0; j < len(value); j++ {
		if b := value[j]; b < 0x20 || b == 0x7f {
			return &transport.ValueError{Field: field, Reason: fmt.Sprintf("control character 0x%02x at byte %d", b, j)}
		}
	}
	return nil
}

// uses reports whether t substitutes metadata index i.
func uses(t *policy.Template, i int) bool {
	if t == nil {
		return false
	}
	for _, p := range t.Parts {
		if p.Meta == i {
			return true
		}
	}
	return false
}

// checkConnect checks the CONNECT fields of a broker connection request
// before it is opened: client id and user name are MQTT strings, the will
// topic a publishable topic (docs/security-validation.md).
func checkConnect(req *connmgr.Request, max int) error {
	if err := transport.CheckUTF8Text(req.Identity.ClientID, "mqtt client id", maxString); err != nil {
		return err
	}
	if err := transport.CheckUTF8Text(req.Identity.Username, "mqtt user name", maxString); err != nil {
		return err
	}
	if w := req.Settings.Will; w != nil {
		if err := connmgr.ValidTopic(w.Topic, max); err != nil {
			return fmt.Errorf("%w: mqtt_will_topic: %w", transport.ErrWireValue, err)
		}
	}
	return nil
}

// topicMax is the topic length limit: 65535 bytes, 256 with aws_iot.
func topicMax(st *policy.Streamtype) int {
	if st.AWSIoT {
		return 256
	}
	return maxString
}
