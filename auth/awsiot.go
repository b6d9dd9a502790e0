package auth

import (
	"net/url"
	"strings"
)

// CustomAuthorizer describes an AWS IoT custom authorizer login over MQTT.
type CustomAuthorizer struct {
	// Username is the MQTT user name the authorizer sees (may be empty).
	Username string
	// Name is the authorizer's name (x-amz-customauthorizer-name).
	Name string
	// TokenKeyName is the authorizer's token key name; Token its value.
	TokenKeyName, Token string
	// Signature is the token's signature with the authorizer's key
	// (x-amz-customauthorizer-signature); empty for an authorizer with
	// signing disabled.
	Signature string
}

// MQTTUsername returns the MQTT user name carrying the authorizer fields:
// "user?x-amz-customauthorizer-name=NAME&x-amz-customauthorizer-signature=SIG&TOKENKEY=TOKEN"
// (the order AWS documents),
// each value query-escaped. The password is then whatever the authorizer
// expects (often empty).
func (c CustomAuthorizer) MQTTUsername() string {
	var b strings.Builder
	b.WriteString(c.Username)
	b.WriteString("?x-amz-customauthorizer-name=")
	b.WriteString(url.QueryEscape(c.Name))
	if c.Signature != "" {
		b.WriteString("&x-amz-customauthorizer-signature=")
		b.WriteString(url.QueryEscape(c.Signature))
	}
	if c.TokenKeyName != "" {
		b.WriteByte('&')
		b.WriteString(url.QueryEscape(c.TokenKeyName))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(c.Token))
	}
	return b.String()
}
