package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// accounts holds the passwords of the host's local accounts (HostLocalAccountManager),
// salted and hashed; the stock simulator keeps only the names.
type accounts struct {
	mu     sync.Mutex
	salt   []byte
	hashes map[string][32]byte
}

func newAccounts() *accounts {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	return &accounts{salt: salt, hashes: map[string][32]byte{}}
}

func (a *accounts) digest(password string) [32]byte {
	return sha256.Sum256(append(append([]byte(nil), a.salt...), password...))
}

func (a *accounts) set(user, password string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hashes[user] = a.digest(password)
}

func (a *accounts) remove(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.hashes, user)
}

func (a *accounts) check(user, password string) bool {
	want := a.digest(password)
	a.mu.Lock()
	have, ok := a.hashes[user]
	a.mu.Unlock()
	return ok && subtle.ConstantTimeCompare(have[:], want[:]) == 1
}

// Login accepts the lab administrator and the local accounts, each with its
// own password; the stock check is opened up (simulator.DefaultLogin) so that
// the session it creates carries the real user name.
func (x *interceptor) login(req *request) {
	body := req.method.Body.(*types.Login)
	if !x.validLogin(body.UserName, body.Password) {
		writeFault(req.w, "Cannot complete login due to an incorrect user name or password.", &types.InvalidLogin{})
		return
	}
	x.next.ServeHTTP(req.w, req.r)
}

// refuseLogin answers the token, certificate and SSPI logins, which the lab does not offer.
func (x *interceptor) refuseLogin(req *request) {
	writeFault(req.w, "Cannot complete login due to an incorrect user name or password.", &types.InvalidLogin{})
}

func (x *interceptor) createUser(req *request) {
	spec := req.method.Body.(*types.CreateUser).User.GetHostAccountSpec()
	rec := x.forward(req)
	if rec.Code == http.StatusOK && spec.Password != "" {
		x.accounts.set(spec.Id, spec.Password)
	}
	flush(req.w, rec)
}

// updateUser changes a password (the stock method ignores it and answers
// with the wrong response type).
func (x *interceptor) updateUser(req *request) {
	spec := req.method.Body.(*types.UpdateUser).User.GetHostAccountSpec()
	if !userExists(spec.Id) {
		writeFault(req.w, "The user or group named '"+spec.Id+"' does not exist.", &types.UserNotFound{Principal: spec.Id})
		return
	}
	if spec.Password != "" {
		x.accounts.set(spec.Id, spec.Password)
	}
	writeResult(req.w, &types.UpdateUserResponse{})
}

func (x *interceptor) removeUser(req *request) {
	user := req.method.Body.(*types.RemoveUser).UserName
	rec := x.forward(req)
	if rec.Code == http.StatusOK {
		x.accounts.remove(user)
	}
	flush(req.w, rec)
}

func userExists(id string) bool {
	dir := simulator.Map.UserDirectory()
	var found bool
	simulator.Map.WithLock(dir, func() {
		res := dir.RetrieveUserGroups(&types.RetrieveUserGroups{SearchStr: id, ExactMatch: true, FindUsers: true})
		if body, ok := res.(*methods.RetrieveUserGroupsBody); ok && body.Res != nil {
			found = len(body.Res.Returnval) != 0
		}
	})
	return found
}
