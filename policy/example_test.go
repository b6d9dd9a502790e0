package policy_test

import (
	"errors"
	"fmt"

	"github.com/securestreams/ss/policy"
)

func ExampleParse() {
	p, diags, err := policy.Parse([]byte(`# a minimal policy
{
  "retry": [{"default": {"backoff": [1000, 2000], "conceal": 3}}],
  "s": [{"api": {"endpoint": "api.example.test", "port": 443, "tls": true,
                 "http_method": "GET", "http_url": "v1/${item}",
                 "retry": "default", "metadata": [{"item": ""}],
                 "endpiont": "typo"}}]
}`), policy.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range diags {
		fmt.Println(d)
	}
	st := p.Streamtype("api")
	url := st.HTTPURLTmpl.Expand(func(i int) string { return "42" })
	fmt.Println(st.Endpoint, st.Port, st.Protocol, url, st.Retry.Backoff, st.Retry.Conceal)
	// Output:
	// 7:18: warning: s[0].api.endpiont: unknown key "endpiont" in a streamtype (ignored); did you mean "endpoint"? [unknown-key]
	// api.example.test 443 h1 v1/42 [1000 2000] 3
}

func ExampleParse_errors() {
	_, _, err := policy.Parse([]byte(`{"s": [{"api": {"endpoint": "e", "port": 70000}}]}`), policy.Options{})
	var pe *policy.Error
	if errors.As(err, &pe) {
		fmt.Println(pe.Path, pe.Line, pe.Col, pe.Code)
	}
	fmt.Println(errors.Is(err, policy.ErrInvalid))
	// Output:
	// s[0].api.port 1 42 range
	// true
}

func ExampleApplyOverlay() {
	base, _, _ := policy.Parse([]byte(`{"s": [{"captive_portal_detect": {
		"endpoint": "connectivity.example.test", "http_method": "GET",
		"http_url": "generate_204", "http_expect": 204}}]}`), policy.Options{})
	p, _, err := policy.ApplyOverlay(base, []byte(`{"s": [{"captive_portal_detect": {"endpoint": "127.0.0.1", "port": 1}}]}`), policy.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	st := p.Streamtype("captive_portal_detect")
	fmt.Println(st.Endpoint, st.Port, st.HTTPExpect, base.Streamtype("captive_portal_detect").Endpoint)
	// Output: 127.0.0.1 1 204 connectivity.example.test
}
