package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Stock govmomi 0.24.2 puts a new VM into its inventory map before it fills
// in the VM's Config (NewVirtualMachine), while RegisterVM scans every VM's
// Config.Files under the map lock (SearchIndex.FindByDatastorePath): a
// registration that runs while another VM is being created or registered
// dereferences a nil Config and the request panics ("Remote end closed
// connection").  Twenty tenants failing over at once hit it within seconds.
//
// Dispatching the calls that create VMs, and that scan them by path, one at a
// time removes the race.  It is cheap: the simulator does that work in
// microseconds, and the modelled latency (withLatency, applied first) still
// overlaps, since it is waited out before this lock is taken.
var creating sync.Mutex

var createsVMs = map[string]bool{
	"RegisterVM_Task":     true,
	"CreateVM_Task":       true,
	"CloneVM_Task":        true,
	"FindByDatastorePath": true,
}

func withSerializedCreates(next http.Handler) http.Handler {
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
		if createsVMs[soapMethod(body)] {
			creating.Lock()
			defer creating.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}
