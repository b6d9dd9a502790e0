package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestSchema(t *testing.T) {
	code, out, errOut := sspolicy(t, "schema")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("schema output is not JSON: %v", err)
	}
	file, err := os.ReadFile("../../docs/policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(file) {
		t.Error("sspolicy schema differs from docs/policy.schema.json (go generate ./policy/...)")
	}
	code, _, errOut = sspolicy(t, "schema", "extra")
	if code != 2 || !strings.Contains(errOut, "takes no arguments") {
		t.Errorf("schema extra: exit %d, stderr %q", code, errOut)
	}
}
