package auth

// ALPN protocol names AWS IoT Core accepts on port 443.
const (
	// ALPNMQTTCA selects MQTT with X.509 client certificates on 443.
	ALPNMQTTCA = "x-amzn-mqtt-ca"
	// ALPNMQTT selects MQTT with a custom authorizer on 443.
	ALPNMQTT = "mqtt"
)
