package main

import (
	"net/http"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// serveDatastore guards the datastore file access over HTTP (/folder/<path>?dsName=&dcPath=):
// the caller is authenticated by its session cookie or basic authentication,
// as on ESXi (the stock simulator serves anyone), and a user other than the
// administrator needs Datastore.Browse to read (GET, HEAD), Datastore.FileManagement
// to write (PUT, POST) and Datastore.DeleteFile to delete on that datastore.
func (x *interceptor) serveDatastore(w http.ResponseWriter, r *http.Request) {
	user := x.sessionUser(r)
	if user == "" {
		user = x.credentialsUser(r)
	}
	if user == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="VMware HTTP server"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if user != x.admin {
		priv := "Datastore.Browse"
		switch r.Method {
		case http.MethodPut, http.MethodPost:
			priv = fileManagement
		case http.MethodDelete:
			priv = "Datastore.DeleteFile"
		}
		var dc *types.ManagedObjectReference
		if name := r.URL.Query().Get("dcPath"); name != "" {
			if d := datacenterByName(strings.Trim(name, "/")); d != nil {
				dc = &d.Self
			}
		}
		if ds := datastoreByName(r.URL.Query().Get("dsName"), dc); ds != nil && !x.granted(user, ds.Self, priv) {
			http.Error(w, "NoPermission: "+priv+" on datastore "+ds.Name, http.StatusForbidden)
			return
		}
	}
	x.next.ServeHTTP(w, r)
}

func datacenterByName(name string) *simulator.Datacenter {
	for _, e := range simulator.Map.All("Datacenter") {
		if dc := e.(*simulator.Datacenter); dc.Name == name {
			return dc
		}
	}
	return nil
}
