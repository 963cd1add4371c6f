package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/xml"
)

// delays maps a SOAP method name to the time to wait before dispatching it.
// "*" is the default for methods without their own entry.
type delays map[string]time.Duration

// parseLatency reads "RegisterVM=120ms,PowerOnVM_Task=80ms,*=5ms".
func parseLatency(spec string) (delays, error) {
	d := delays{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("-latency: %q is not METHOD=DURATION", item)
		}
		dur, err := time.ParseDuration(strings.TrimSpace(value))
		if err != nil || dur < 0 {
			return nil, fmt.Errorf("-latency: %q: bad duration", item)
		}
		d[strings.TrimSpace(name)] = dur
	}
	return d, nil
}

// lookup finds the delay for a SOAP method; "RegisterVM" also matches "RegisterVM_Task".
func (d delays) lookup(method string) time.Duration {
	if dur, ok := d[method]; ok {
		return dur
	}
	if dur, ok := d[strings.TrimSuffix(method, "_Task")]; ok {
		return dur
	}
	return d["*"]
}

// withLatency delays each SOAP request by its method's delay before the
// simulator sees it, so no simulator lock is held while waiting and
// concurrent clients overlap as they would against a real vCenter.
func withLatency(next http.Handler, d delays) http.Handler {
	if len(d) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/sdk") {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if dur := d.lookup(soapMethod(body)); dur > 0 {
			timer := time.NewTimer(dur)
			select {
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// soapMethod returns the local name of the first element inside the SOAP Body.
func soapMethod(body []byte) string {
	dec := xml.NewDecoder(bytes.NewReader(body))
	inBody := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if start, ok := tok.(xml.StartElement); ok {
			if inBody {
				return start.Name.Local
			}
			inBody = start.Name.Local == "Body"
		}
	}
}
