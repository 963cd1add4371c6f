package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// The vCenter SSO stand-in (vcenter mode).
//
// vCenter's directory accounts (user@vsphere.local) are made through the SSO
// administration, not the vSphere API; the lab gives them in a JSON file
// (-directory, 0600) that is read at each login and each directory search,
// so that accounts can be added while the simulator runs.  Such an account
// logs in with its password and is found by UserDirectory.RetrieveUserGroups,
// like the stock root and admin; its privileges come from permissions (authz.go).

func (x *interceptor) directoryAccounts() map[string]string {
	if x.mode != "vcenter" || x.directory == "" {
		return nil
	}
	data, err := os.ReadFile(x.directory)
	if err != nil {
		return nil
	}
	accounts := map[string]string{}
	if json.Unmarshal(data, &accounts) != nil {
		return nil
	}
	return accounts
}

func (x *interceptor) directoryLogin(user, password string) bool {
	want, ok := x.directoryAccounts()[user]
	return ok && want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
}

// retrieveUserGroups answers from the stock directory and, in vcenter mode, the directory file.
func (x *interceptor) retrieveUserGroups(req *request) {
	accounts := x.directoryAccounts()
	if accounts == nil {
		x.next.ServeHTTP(req.w, req.r)
		return
	}
	body := req.method.Body.(*types.RetrieveUserGroups)
	match := func(s string) bool {
		if body.ExactMatch {
			return s == body.SearchStr
		}
		return strings.Contains(strings.ToLower(s), strings.ToLower(body.SearchStr))
	}
	var found []types.BaseUserSearchResult
	for _, ug := range simulator.DefaultUserGroup {
		if ((body.FindUsers && !ug.Group) || (body.FindGroups && ug.Group)) && match(ug.Principal) {
			found = append(found, ug)
		}
	}
	if body.FindUsers {
		for user := range accounts {
			if match(user) {
				found = append(found, &types.UserSearchResult{Principal: user, FullName: user})
			}
		}
	}
	writeResult(req.w, &types.RetrieveUserGroupsResponse{Returnval: found})
}

// Console tickets: stock has no AcquireTicket.  A powered-on VM gets a one-time
// ticket (the console's address is the simulator's own); a powered-off one is
// refused with InvalidState, as vSphere does.
func (x *interceptor) acquireTicket(req *request) {
	ticket, fault := x.ticket(req)
	if fault != nil {
		writeFault(req.w, fault.LocalizedMessage, fault.Fault)
		return
	}
	writeResult(req.w, &types.AcquireTicketResponse{Returnval: *ticket})
}

func (x *interceptor) acquireMksTicket(req *request) {
	ticket, fault := x.ticket(req)
	if fault != nil {
		writeFault(req.w, fault.LocalizedMessage, fault.Fault)
		return
	}
	writeResult(req.w, &types.AcquireMksTicketResponse{Returnval: types.VirtualMachineMksTicket{
		Ticket: ticket.Ticket, CfgFile: ticket.CfgFile, Host: ticket.Host, Port: ticket.Port, SslThumbprint: ticket.SslThumbprint,
	}})
}

func (x *interceptor) ticket(req *request) (*types.VirtualMachineTicket, *types.LocalizedMethodFault) {
	vm, ok := simulator.Map.Get(req.method.This).(*simulator.VirtualMachine)
	if !ok {
		return nil, &types.LocalizedMethodFault{Fault: &types.ManagedObjectNotFound{Obj: req.method.This}, LocalizedMessage: "The object has already been deleted or has not been completely created"}
	}
	var power types.VirtualMachinePowerState
	var vmx string
	simulator.Map.WithLock(vm, func() { power, vmx = vm.Runtime.PowerState, vm.Config.Files.VmPathName })
	if power != types.VirtualMachinePowerStatePoweredOn {
		return nil, &types.LocalizedMethodFault{Fault: &types.InvalidState{}, LocalizedMessage: "The operation is not allowed in the current state."}
	}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	host, port := "127.0.0.1", int32(443)
	if addr, ok := req.r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		host, port = addr.IP.String(), int32(addr.Port)
	}
	return &types.VirtualMachineTicket{Ticket: hex.EncodeToString(raw), CfgFile: vmx, Host: host, Port: port}, nil
}
