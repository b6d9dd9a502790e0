// Command aws-iot connects to AWS IoT Core in every way a device can
// (docs/auth.md): MQTT with an X.509 client certificate (port 8883), the same
// on port 443 with ALPN x-amzn-mqtt-ca, MQTT over WSS with a SigV4-presigned
// URL, and a custom authorizer (port 443, ALPN mqtt). Each method connects,
// publishes a message and receives it back on its own subscription.
//
// By default everything runs against an in-process stand-in: an embedded
// broker behind TLS listeners that demand a client certificate or ALPN, and
// a WebSocket front that checks the presigned URL with the AWS SDK's signer.
// With -endpoint it talks to a real AWS IoT endpoint:
//
//	go run ./examples/aws-iot -endpoint abc123-ats.iot.eu-west-1.amazonaws.com \
//	    -region eu-west-1 -cert device.pem.crt -key private.pem.key -ca AmazonRootCA1.pem \
//	    -profile default -client-id d1
package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/auth"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

// endpoints says where each method connects.
type endpoints struct {
	host                       string
	mtls, mtls443, wss, custom int
	ca                         []byte // DER of the CA the endpoint's certificate chains to
}

// The ALPN protocols AWS IoT Core accepts on port 443; the stand-in
// endpoints demand them, as AWS does (ss offers them by itself).
const (
	alpnMQTTCA = "x-amzn-mqtt-ca" // MQTT with an X.509 client certificate
	alpnMQTT   = "mqtt"           // MQTT with a custom authorizer
)

const streamtypeJSON = `{%[1]q: {"endpoint": %[2]q, "port": %[3]d, "protocol": "mqtt", "tls": true, "tls_trust_store": "iot",
  "mqtt_topic": "dev/d1/%[1]s", "mqtt_subscribe": "dev/d1/%[1]s", "mqtt_qos": 1, "retry": "r", %[4]s}}`

func policyFor(ep endpoints) (*policy.Policy, error) {
	sts := []string{
		fmt.Sprintf(streamtypeJSON, "mtls-8883", ep.host, ep.mtls, `"client_cert": 0`),
		fmt.Sprintf(streamtypeJSON, "mtls-443-alpn", ep.host, ep.mtls443, `"client_cert": 0, "aws_iot": true`),
		fmt.Sprintf(streamtypeJSON, "wss-sigv4", ep.host, ep.wss,
			`"aws_iot": true, "mqtt_ws_path": "/mqtt", "use_auth": "aws", "aws_region": "region", "metadata": [{"region": ""}]`),
		fmt.Sprintf(streamtypeJSON, "custom-authorizer", ep.host, ep.custom, `"aws_iot": true`),
	}
	js := fmt.Sprintf(`{"release": "aws-iot", "product": "example", "schema-version": 1,
  "retry": [{"r": {"backoff": [200, 400], "conceal": 3, "jitterpc": 0}}],
  "certs": [{"iot_ca": %q}], "trust_stores": [{"name": "iot", "stack": ["iot_ca"]}],
  "auth": [{"name": "aws", "type": "sigv4", "blob": 0}],
  "s": [%s, %s, %s, %s]}`, base64.StdEncoding.EncodeToString(ep.ca), sts[0], sts[1], sts[2], sts[3])
	p, _, err := policy.Parse([]byte(js), policy.Options{})
	return p, err
}

func main() {
	endpoint := flag.String("endpoint", "", "a real AWS IoT endpoint (default: an in-process stand-in)")
	region := flag.String("region", "eu-west-1", "AWS region (presigned WebSocket URLs)")
	certFile := flag.String("cert", "", "device certificate (PEM) for the X.509 methods")
	keyFile := flag.String("key", "", "device private key (PEM)")
	caFile := flag.String("ca", "", "the endpoint's CA (PEM, e.g. AmazonRootCA1.pem)")
	profile := flag.String("profile", "", "AWS shared-config profile for SigV4")
	clientID := flag.String("client-id", "d1", "MQTT client id (the thing name)")
	authorizer := flag.String("authorizer", "example-authorizer", "custom authorizer name")
	tokenKey := flag.String("token-key", "token", "custom authorizer token key name")
	token := flag.String("token", "allow", "custom authorizer token")
	signature := flag.String("signature", "", "custom authorizer token signature (base64)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var err error
	if *endpoint == "" {
		err = standIn(ctx, *region, *clientID, *authorizer, *tokenKey, *token, *signature)
	} else {
		err = real(ctx, *endpoint, *region, *certFile, *keyFile, *caFile, *profile, *clientID, *authorizer, *tokenKey, *token, *signature)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "aws-iot:", err)
		os.Exit(1)
	}
}

// standIn runs every method against in-process stand-ins.
func standIn(ctx context.Context, region, clientID, authorizer, tokenKey, token, signature string) error {
	p, err := newPKI()
	if err != nil {
		return err
	}
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "example-secret", SessionToken: "example-session"}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	serve := func(cfg *tls.Config) (int, error) {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			return 0, err
		}
		b, err := mqtttest.Serve(ln)
		if err != nil {
			return 0, err
		}
		closers = append(closers, func() { _ = b.Close(context.Background()) })
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	ep := endpoints{host: "127.0.0.1", ca: p.caDER}
	if ep.mtls, err = serve(p.serverTLS(true, "")); err != nil {
		return err
	}
	if ep.mtls443, err = serve(p.serverTLS(true, alpnMQTTCA)); err != nil {
		return err
	}
	if ep.custom, err = serve(p.serverTLS(false, alpnMQTT)); err != nil {
		return err
	}
	plain, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	closers = append(closers, func() { _ = plain.Close(context.Background()) })
	front := testutil.StartWSFront(plain.Addr, "/mqtt", p.serverTLS(false, ""),
		&testutil.PresignVerifier{Keys: map[string]aws.Credentials{creds.AccessKeyID: creds}})
	closers = append(closers, front.Close)
	ep.wss = front.Port()
	fmt.Println("stand-in AWS IoT: mTLS, mTLS+ALPN x-amzn-mqtt-ca, WSS with SigV4 check, custom authorizer (ALPN mqtt)")
	return runAll(ctx, ep, region, clientID, &p.device, auth.StaticCredentials(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		auth.CustomAuthorizer{Name: authorizer, TokenKeyName: tokenKey, Token: token, Signature: signature})
}

// real runs every method against a real AWS IoT endpoint.
func real(ctx context.Context, endpoint, region, certFile, keyFile, caFile, profile, clientID, authorizer, tokenKey, token, signature string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("-cert/-key: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("-ca: %w", err)
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		return fmt.Errorf("-ca %s: no PEM certificate", caFile)
	}
	creds, err := auth.ProfileCredentials(ctx, profile)
	if err != nil {
		return err
	}
	ep := endpoints{host: endpoint, mtls: 8883, mtls443: 443, wss: 443, custom: 443, ca: blk.Bytes}
	return runAll(ctx, ep, region, clientID, &cert, creds,
		auth.CustomAuthorizer{Name: authorizer, TokenKeyName: tokenKey, Token: token, Signature: signature})
}

func runAll(ctx context.Context, ep endpoints, region, clientID string, cert *tls.Certificate, creds aws.CredentialsProvider, ca auth.CustomAuthorizer) error {
	p, err := policyFor(ep)
	if err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p, MQTTClientID: clientID})
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())
	if err := rt.Blobs().SetClientCert(ctx, 0, cert); err != nil {
		return err
	}
	if err := rt.Blobs().SetCredentials(ctx, 0, creds); err != nil {
		return err
	}
	for _, name := range []string{"mtls-8883", "mtls-443-alpn"} {
		if err := roundTrip(ctx, rt, name); err != nil {
			return err
		}
	}
	// The presigned URL's region comes from the metadata aws_region names.
	if err := roundTrip(ctx, rt, "wss-sigv4", ss.WithMetadata("region", region)); err != nil {
		return err
	}
	// The custom authorizer's fields travel in the MQTT user name, which is
	// per runtime (Config.MQTTUsername).
	crt, err := ss.New(ctx, ss.Config{Policy: p, MQTTClientID: clientID + "-ca", MQTTUsername: ca.MQTTUsername()})
	if err != nil {
		return err
	}
	defer crt.Close(context.Background())
	fmt.Println("custom authorizer user name:", ca.MQTTUsername())
	return roundTrip(ctx, crt, "custom-authorizer")
}

// roundTrip connects a stream of streamtype, publishes one message and
// waits for it to come back on the stream's subscription.
func roundTrip(ctx context.Context, rt *ss.Runtime, streamtype string, opts ...ss.Option) error {
	s, err := rt.Create(ctx, streamtype, opts...)
	if err != nil {
		return err
	}
	defer func() {
		go func() {
			for range s.Events() {
			}
		}()
		_ = s.Destroy(ctx)
	}()
	if err := s.Connect(); err != nil {
		return err
	}
	msg := "hello via " + streamtype
	for {
		select {
		case ev := <-s.Events():
			switch {
			case ev.Kind == ss.PayloadEvent:
				if string(ev.Payload) == msg {
					fmt.Printf("%s: round trip %q\n", streamtype, ev.Payload)
					return nil
				}
			case ev.State == ss.Connected:
				fmt.Printf("%s: CONNECTED\n", streamtype)
				go func() { _ = s.Send(ctx, []byte(msg)) }()
			case ev.State == ss.Unreachable || ev.State == ss.AllRetriesFailed || ev.State == ss.AuthFailed:
				return fmt.Errorf("%s: %s: %v", streamtype, ev.State, ev.Err)
			}
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", streamtype, ctx.Err())
		}
	}
}
