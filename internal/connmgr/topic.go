package connmgr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ValidFilter reports whether filter is a valid MQTT 3.1.1 topic filter: not
// empty, at most 65535 bytes, valid UTF-8 without NUL, '+' only as a whole
// level, '#' only as the whole last level.
func ValidFilter(filter string) error {
	if filter == "" {
		return fmt.Errorf("%w: empty topic filter", ErrTopic)
	}
	if len(filter) > 65535 {
		return fmt.Errorf("%w: topic filter is %d bytes, the limit is 65535", ErrTopic, len(filter))
	}
	if err := textOK(filter); err != "" {
		return fmt.Errorf("%w: topic filter %q: %s", ErrTopic, filter, err)
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") {
			switch {
			case l == "+":
			case l == "#" && i == len(levels)-1:
			default:
				return fmt.Errorf("%w: topic filter %q: wildcard inside level %q", ErrTopic, filter, l)
			}
		}
	}
	return nil
}

// ValidTopic reports whether topic can be published to: not empty, no
// wildcard, at most max bytes (65535, or 256 for AWS IoT), valid UTF-8
// without NUL.
func ValidTopic(topic string, max int) error {
	switch {
	case topic == "":
		return fmt.Errorf("%w: empty topic", ErrTopic)
	case strings.ContainsAny(topic, "+#"):
		return fmt.Errorf("%w: topic %q contains a wildcard", ErrTopic, topic)
	case len(topic) > max:
		return fmt.Errorf("%w: topic is %d bytes, the limit is %d", ErrTopic, len(topic), max)
	}
	if err := textOK(topic); err != "" {
		return fmt.Errorf("%w: topic %q: %s", ErrTopic, topic, err)
	}
	return nil
}

// textOK returns why s is not an MQTT UTF-8 string (MQTT 3.1.1 §1.5.3: valid
// UTF-8, no NUL), "" when it is.
func textOK(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return "NUL (0x00) at byte " + strconv.Itoa(i)
	}
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	return ""
}

// Match reports whether topic matches the MQTT topic filter: '+' matches
// exactly one level, '#' (last) matches the parent level and any number of
// levels below it, and a filter starting with a wildcard does not match a
// topic starting with '$' (MQTT 3.1.1 §4.7.2).
func Match(filter, topic string) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		// Next filter level.
		fl := filter
		fi := strings.IndexByte(filter, '/')
		if fi >= 0 {
			fl = filter[:fi]
		}
		if fl == "#" {
			return true
		}
		tl := topic
		ti := strings.IndexByte(topic, '/')
		if ti >= 0 {
			tl = topic[:ti]
		}
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case fi < 0 && ti < 0:
			return true
		case fi < 0:
			return false // topic has more levels
		case ti < 0:
			// Topic ended; only "x/#" may still match the parent level.
			return filter[fi+1:] == "#"
		}
		filter, topic = filter[fi+1:], topic[ti+1:]
	}
}
