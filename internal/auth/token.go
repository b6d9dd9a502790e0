package auth

// Kind names a kind of slot.
type Kind uint8

// Slot kinds.
const (
	KindToken       Kind = iota + 1 // auth tokens
	KindLWA                         // LWA refresh credentials
	KindSigningKey                  // JWT signing keys
	KindClientCert                  // TLS client certificates
	KindCredentials                 // SigV4 credential providers
	KindDevice                      // the device identity (Slot is 0)
)

var kindNames = [...]string{KindToken: "token", KindLWA: "lwa", KindSigningKey: "signing-key",
	KindClientCert: "client-cert", KindCredentials: "credentials", KindDevice: "device"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind?"
}

// Change says which slot a Store update touched.
type Change struct {
	Kind Kind
	Slot int
}
