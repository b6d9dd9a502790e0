package mqtt

import "github.com/securestreams/ss/internal/connmgr"

// AWS IoT Jobs (docs/auth.md): the Jobs MQTT API is request/response like
// the Shadow, so with aws_iot a message published on a Jobs request topic is
// handled exactly as a Shadow request (shadow.go): <topic>/accepted and
// <topic>/rejected are subscribed first and the response is delivered as rx
// with its topic in the metadata item named in mqtt_subscribe. Job
// notifications ($aws/things/{thing}/jobs/notify and notify-next) are
// ordinary subscriptions.

// jobsRequestTopics are the Jobs API request topics (thing name and job id
// as single levels).
var jobsRequestTopics = []string{
	"$aws/things/+/jobs/get",
	"$aws/things/+/jobs/start-next",
	"$aws/things/+/jobs/+/get",
	"$aws/things/+/jobs/+/update",
}

// isJobsTopic reports whether topic is a Jobs request topic.
func isJobsTopic(topic string) bool {
	for _, f := range jobsRequestTopics {
		if connmgr.Match(f, topic) {
			return true
		}
	}
	return false
}

// isRequestTopic reports whether an aws_iot publish on topic expects an
// accepted/rejected response (Shadow or Jobs).
func isRequestTopic(topic string) bool { return isShadowTopic(topic) || isJobsTopic(topic) }
