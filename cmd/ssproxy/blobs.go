package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/auth"
)

func init() { register(credentials) }

// blobsFile is the -blobs file (docs/auth.md): the device identity and,
// per slot 0..3, where its credentials are. Paths are files holding one
// secret each, so the file itself can be world-readable while the secrets
// are not.
type blobsFile struct {
	Device *struct {
		Serial          string `json:"serial"`
		FirmwareVersion string `json:"firmware_version"`
		Type            string `json:"type"`
	} `json:"device"`
	Slots map[string]slotFile `json:"slots"`
}

type slotFile struct {
	// Token is a file holding the auth token (trailing white space
	// removed).
	Token string `json:"token"`
	// Cert and Key are PEM files: the TLS client certificate and its key.
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// JWTKey is a PEM private key signing the tokens of jwt schemes.
	JWTKey string `json:"jwt_key"`
	// LWA: the refresh token (a file) and the client id (and secret).
	LWA *struct {
		RefreshToken string `json:"refresh_token_file"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret_file"`
	} `json:"lwa"`
	// AWSProfile is a shared-config profile for this slot's SigV4
	// credentials (overrides -aws-profile).
	AWSProfile string `json:"aws_profile"`
}

// loadedSlot is one slot read from its files.
type loadedSlot struct {
	token  []byte
	cert   *tls.Certificate
	jwtKey crypto.Signer
	lwa    *auth.LWACredentials
	aws    aws.CredentialsProvider
}

type loadedBlobs struct {
	device *auth.Device
	slots  [auth.Slots]loadedSlot
}

// credentials is the -blobs / -aws-profile / -mqtt-client-id feature: it
// fills the runtime's credential store at startup and again on SIGHUP.
// Secrets are never logged: the log names slots and kinds only.
func credentials(fs *flag.FlagSet) hooks {
	file := fs.String("blobs", "", "credentials `file` (JSON: device ids and, per slot 0..3, token / client cert / key / JWT key / LWA refresh-token files and client id, aws_profile); re-read on SIGHUP; secrets are never logged")
	profile := fs.String("aws-profile", "", "AWS shared-config `profile` for the SigV4 credentials of every slot the -blobs file gives no aws_profile")
	clientID := fs.String("mqtt-client-id", "", "MQTT client `id` of the broker connections (default: random, clean session)")
	var first *loadedBlobs
	load := func(ctx context.Context) (*loadedBlobs, error) {
		return loadBlobs(ctx, *file, *profile)
	}
	return hooks{
		Check: func() error {
			if *clientID != "" && strings.ContainsAny(*clientID, "\x00") {
				return errors.New("-mqtt-client-id must not contain NUL")
			}
			return nil
		},
		Configure: func(d *daemon, cfg *ss.Config) error {
			if *clientID != "" {
				cfg.MQTTClientID = *clientID
			}
			if *file == "" && *profile == "" {
				return nil
			}
			b, err := load(context.Background())
			if err != nil {
				return err
			}
			if b.device != nil {
				cfg.Device = *b.device
			}
			first = b
			return nil
		},
		Start: func(ctx context.Context, d *daemon) (func(context.Context), error) {
			if first == nil {
				return nil, nil
			}
			err := first.apply(ctx, d)
			first = nil
			return nil, err
		},
		Reload: func(ctx context.Context, d *daemon) error {
			if *file == "" && *profile == "" {
				return nil
			}
			b, err := load(ctx)
			if err != nil {
				return fmt.Errorf("keeping the current credentials: %w", err)
			}
			return b.apply(ctx, d)
		},
	}
}

// loadBlobs reads the -blobs file and every file it names.
func loadBlobs(ctx context.Context, file, profile string) (*loadedBlobs, error) {
	var bf blobsFile
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("-blobs: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&bf); err != nil {
			return nil, fmt.Errorf("-blobs %s: %w", file, err)
		}
	}
	b := &loadedBlobs{}
	if bf.Device != nil {
		b.device = &auth.Device{Serial: bf.Device.Serial, FirmwareVersion: bf.Device.FirmwareVersion, Type: bf.Device.Type}
	}
	for name, sf := range bf.Slots {
		n, err := strconv.Atoi(name)
		if err != nil || n < 0 || n >= auth.Slots {
			return nil, fmt.Errorf("-blobs %s: slot %q: slots are \"0\" to \"3\"", file, name)
		}
		if err := sf.load(ctx, &b.slots[n]); err != nil {
			return nil, fmt.Errorf("-blobs %s: slot %d: %w", file, n, err)
		}
	}
	if profile != "" {
		for i := range b.slots {
			if b.slots[i].aws != nil {
				continue
			}
			p, err := auth.ProfileCredentials(ctx, profile)
			if err != nil {
				return nil, fmt.Errorf("-aws-profile: %w", err)
			}
			b.slots[i].aws = p
		}
	}
	return b, nil
}

func readSecret(path string) ([]byte, error) {
	v, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v = bytes.TrimRight(v, " \t\r\n")
	if len(v) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

func (sf slotFile) load(ctx context.Context, ls *loadedSlot) error {
	var err error
	if sf.Token != "" {
		if ls.token, err = readSecret(sf.Token); err != nil {
			return fmt.Errorf("token: %w", err)
		}
	}
	if (sf.Cert == "") != (sf.Key == "") {
		return errors.New("cert and key go together")
	}
	if sf.Cert != "" {
		c, err := tls.LoadX509KeyPair(sf.Cert, sf.Key)
		if err != nil {
			return fmt.Errorf("client certificate: %w", err)
		}
		ls.cert = &c
	}
	if sf.JWTKey != "" {
		raw, err := os.ReadFile(sf.JWTKey)
		if err != nil {
			return fmt.Errorf("jwt_key: %w", err)
		}
		k, err := auth.ParsePrivateKeyPEM(raw)
		if err != nil {
			return fmt.Errorf("jwt_key %s: %w", sf.JWTKey, err)
		}
		ls.jwtKey = k
	}
	if sf.LWA != nil {
		c := auth.LWACredentials{ClientID: sf.LWA.ClientID}
		if c.ClientID == "" || sf.LWA.RefreshToken == "" {
			return errors.New("lwa needs client_id and refresh_token_file")
		}
		rt, err := readSecret(sf.LWA.RefreshToken)
		if err != nil {
			return fmt.Errorf("lwa refresh token: %w", err)
		}
		c.RefreshToken = string(rt)
		if sf.LWA.ClientSecret != "" {
			cs, err := readSecret(sf.LWA.ClientSecret)
			if err != nil {
				return fmt.Errorf("lwa client secret: %w", err)
			}
			c.ClientSecret = string(cs)
		}
		ls.lwa = &c
	}
	if sf.AWSProfile != "" {
		if ls.aws, err = auth.ProfileCredentials(ctx, sf.AWSProfile); err != nil {
			return err
		}
	}
	return nil
}

// apply puts what was loaded into the runtime's store and logs which slots
// and kinds it set (never a value).
func (b *loadedBlobs) apply(ctx context.Context, d *daemon) error {
	st := d.Runtime().Blobs()
	if st == nil {
		return errors.New("the runtime has no credential store")
	}
	var set []string
	if b.device != nil {
		if err := st.SetDevice(ctx, *b.device); err != nil {
			return err
		}
		set = append(set, "device")
	}
	for i, ls := range b.slots {
		var errs []error
		if ls.token != nil {
			errs = append(errs, st.SetToken(ctx, i, auth.Token{Value: ls.token}))
			set = append(set, fmt.Sprintf("token[%d]", i))
		}
		if ls.cert != nil {
			errs = append(errs, st.SetClientCert(ctx, i, ls.cert))
			set = append(set, fmt.Sprintf("client-cert[%d]", i))
		}
		if ls.jwtKey != nil {
			errs = append(errs, st.SetSigningKey(ctx, i, ls.jwtKey))
			set = append(set, fmt.Sprintf("jwt-key[%d]", i))
		}
		if ls.lwa != nil {
			errs = append(errs, st.SetLWA(ctx, i, *ls.lwa))
			set = append(set, fmt.Sprintf("lwa[%d]", i))
		}
		if ls.aws != nil {
			errs = append(errs, st.SetCredentials(ctx, i, ls.aws))
			set = append(set, fmt.Sprintf("aws[%d]", i))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	sort.Strings(set)
	d.Logger.Info("ssproxy: credentials loaded", "set", strings.Join(set, ","))
	return nil
}
