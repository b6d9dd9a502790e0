package transport

import (
	"encoding/json"
	"math"
	"time"
)

// PerfReport renders the docs/streams.md §14 connection performance JSON.
// httpStatus < 0 omits prot_specific (non-HTTP protocols).
func PerfReport(t *Timing, txnResp time.Duration, httpStatus int) []byte {
	type prot struct {
		Protocol string `json:"protocol"`
		Resp     int    `json:"resp"`
	}
	type report struct {
		Peer       string   `json:"peer"`
		DNSUS      uint32   `json:"dns_us"`
		DNSDisp    int      `json:"dns_disp"`
		SockConnUS uint32   `json:"sockconn_us"`
		TLSUS      uint32   `json:"tls_us"`
		TxnRespUS  uint32   `json:"txn_resp_us"`
		DNS        []string `json:"dns"`
		Prot       *prot    `json:"prot_specific,omitempty"`
	}
	if t == nil {
		t = &Timing{}
	}
	r := report{
		Peer: t.Peer, DNSUS: us(t.DNS), DNSDisp: t.DNSDisp, SockConnUS: us(t.SockConnect),
		TLSUS: us(t.TLS), TxnRespUS: us(txnResp), DNS: t.DNSAddrs,
	}
	if r.DNS == nil {
		r.DNS = []string{}
	}
	if httpStatus >= 0 {
		r.Prot = &prot{Protocol: "http", Resp: httpStatus}
	}
	b, _ := json.Marshal(r)
	return b
}

func us(d time.Duration) uint32 {
	v := d.Microseconds()
	if v < 0 {
		return 0
	}
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}
