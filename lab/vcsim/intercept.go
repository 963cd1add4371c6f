package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// interceptor sits between the HTTP server and the stock simulator.  It is
// where the lab simulator is stricter than stock govmomi 0.24.2:
//
//   - logins are checked against the lab administrator and the host's local
//     accounts (with their passwords), and a session knows its user;
//   - a non-administrator session is subject to vSphere privileges: every
//     method in authz.go is checked against the permissions on the entity tree
//     and refused with NoPermission as vSphere does;
//   - a virtual machine's .vmx is written as its configuration changes and
//     read back by RegisterVM_Task (vmx.go), with the "moved or copied?"
//     question at the first power-on of a VM registered elsewhere (question.go);
//   - a static MAC outside 00:50:56:00:00:00-00:50:56:3F:FF:FF is refused.
//
// It decodes only the requests it acts on; the others go through untouched.
type interceptor struct {
	next     http.Handler
	mode     string
	admin    string
	password string
	client   *vim25.Client // in-process, as the administrator
	ctx      context.Context

	accounts  *accounts
	directory string // vcenter mode: the SSO stand-in's accounts file (directory.go)
	vmx       *vmxState
	question  time.Duration

	mu       sync.Mutex
	sessions map[string]string // session key -> user name
}

func newInterceptor(next http.Handler, cfg config, client *vim25.Client) *interceptor {
	return &interceptor{
		next:      next,
		mode:      cfg.mode,
		admin:     cfg.username,
		password:  cfg.password,
		client:    client,
		ctx:       context.Background(),
		accounts:  newAccounts(),
		directory: cfg.directory,
		vmx:       newVMXState(),
		question:  cfg.questionTimeout,
		sessions:  map[string]string{},
	}
}

// request is one decoded SOAP call.
type request struct {
	method *simulator.Method
	user   string // "" when the call carries no known session
	admin  bool
	w      http.ResponseWriter
	r      *http.Request
	body   []byte
}

func (x *interceptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/folder"):
		x.serveDatastore(w, r)
		return
	case r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/sdk"):
		x.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	_ = r.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	name := soapMethod(body)
	user := x.sessionUser(r)
	admin := user == x.admin
	if !x.interested(name, user != "" && !admin) {
		x.next.ServeHTTP(w, r)
		return
	}
	method, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		x.next.ServeHTTP(w, r) // the simulator answers with its own decoding fault
		return
	}
	req := &request{method: method, user: user, admin: admin, w: w, r: r, body: body}
	if user != "" && !admin {
		if c, denied := x.authorize(user, method); denied {
			writeFault(w, "Permission to perform this operation was denied.", &types.NoPermission{Object: c.entity, PrivilegeId: c.priv})
			return
		}
	}
	x.dispatch(req)
}

// interested tells whether a method needs decoding: one this file acts on, or
// any method with a privilege when the caller is not the administrator.
func (x *interceptor) interested(name string, restricted bool) bool {
	if _, ok := hooks[name]; ok {
		return true
	}
	return restricted && privileged(name)
}

// forward passes the request to the simulator, buffering the answer so that
// a hook can act before the client sees it.
func (x *interceptor) forward(req *request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req.r.Body = io.NopCloser(bytes.NewReader(req.body))
	x.next.ServeHTTP(rec, req.r)
	return rec
}

func flush(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// sessionUser returns the user of the request's session ("" for none).
func (x *interceptor) sessionUser(r *http.Request) string {
	cookie, err := r.Cookie(soap.SessionCookieName)
	if err != nil || cookie.Value == "" {
		return ""
	}
	return x.userOf(cookie.Value)
}

// userOf finds a session's user through the SessionManager's session list
// (the exported view the PropertyCollector uses), and remembers it: session
// keys are never reused and a session never changes user.
func (x *interceptor) userOf(key string) string {
	x.mu.Lock()
	user, ok := x.sessions[key]
	x.mu.Unlock()
	if ok {
		return user
	}
	ref := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance).Content.SessionManager
	probe := &simulator.Session{Registry: simulator.NewRegistry()}
	view, _ := probe.Get(*ref).(*simulator.SessionManager)
	if view == nil {
		return ""
	}
	for _, s := range view.SessionList {
		if s.Key == key {
			x.mu.Lock()
			x.sessions[key] = s.UserName
			x.mu.Unlock()
			return s.UserName
		}
	}
	return ""
}

// credentialsUser checks HTTP basic authentication (datastore file access).
func (x *interceptor) credentialsUser(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Basic ") {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic "))
	if err != nil {
		return ""
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if ok && x.validLogin(user, password) {
		return user
	}
	return ""
}

func (x *interceptor) validLogin(user, password string) bool {
	if user == "" || password == "" {
		return false
	}
	if user == x.admin {
		return password == x.password
	}
	return x.accounts.check(user, password) || x.directoryLogin(user, password)
}

// SOAP answers written by the interceptor itself.

type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type soapFaultBody struct {
	Fault struct {
		XMLName xml.Name    `xml:"soapenv:Fault"`
		Code    string      `xml:"faultcode"`
		String  string      `xml:"faultstring"`
		Detail  faultDetail `xml:"detail"`
	}
}

// faultDetail encodes <XxxFault xmlns="urn:vim25" xsi:type="Xxx">.
type faultDetail struct{ fault types.BaseMethodFault }

func (d faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	kind := reflect.TypeOf(d.fault).Elem().Name()
	inner := xml.StartElement{
		Name: xml.Name{Local: kind + "Fault"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "xmlns"}, Value: "urn:" + vim25.Namespace},
			{Name: xml.Name{Local: "xsi:type"}, Value: kind},
		},
	}
	if err := e.EncodeElement(d.fault, inner); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

// soapResult encodes a method's response element, e.g. <PowerOnVM_TaskResponse xmlns="urn:vim25">.
type soapResult struct{ res interface{} }

func (b soapResult) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	name := reflect.TypeOf(b.res).Elem().Name()
	inner := xml.StartElement{Name: xml.Name{Space: "urn:" + vim25.Namespace, Local: name}}
	if err := e.EncodeElement(b.res, inner); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

func writeEnvelope(w http.ResponseWriter, status int, body interface{}) {
	var out bytes.Buffer
	out.WriteString(xml.Header)
	enc := xml.NewEncoder(&out)
	err := enc.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: body,
	})
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		log.Printf("encoding a SOAP answer: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out.Bytes())
}

func writeFault(w http.ResponseWriter, msg string, fault types.BaseMethodFault) {
	body := &soapFaultBody{}
	body.Fault.Code = "ServerFaultCode"
	body.Fault.String = msg
	body.Fault.Detail = faultDetail{fault}
	writeEnvelope(w, http.StatusInternalServerError, body)
}

// writeResult answers a call with res, a *types.XxxResponse.
func writeResult(w http.ResponseWriter, res interface{}) {
	writeEnvelope(w, http.StatusOK, soapResult{res})
}

// returnval reads the first <returnval type="T">value</returnval> of a buffered answer.
func returnval(rec *httptest.ResponseRecorder) (types.ManagedObjectReference, bool) {
	if rec.Code != http.StatusOK {
		return types.ManagedObjectReference{}, false
	}
	dec := xml.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	for {
		tok, err := dec.Token()
		if err != nil {
			return types.ManagedObjectReference{}, false
		}
		start, ok := tok.(xml.StartElement)
		if !ok || start.Name.Local != "returnval" {
			continue
		}
		var ref types.ManagedObjectReference
		for _, a := range start.Attr {
			if a.Name.Local == "type" {
				ref.Type = a.Value
			}
		}
		var value string
		if err := dec.DecodeElement(&value, &start); err != nil {
			return types.ManagedObjectReference{}, false
		}
		ref.Value = strings.TrimSpace(value)
		return ref, ref.Type != ""
	}
}

// Tasks the interceptor creates itself.

// newTask creates a task on obj; info.name is the method's WSDL name (e.g.
// "PowerOnVM_Task"), which pyVmomi resolves when it waits on a running task.
func newTask(obj types.ManagedObjectReference, method string, run func(*simulator.Task) (types.AnyType, types.BaseMethodFault)) *simulator.Task {
	short := strings.TrimSuffix(strings.ToLower(method[:1])+method[1:], "_Task")
	task := simulator.CreateTask(obj, short, run)
	simulator.Map.Update(task, []types.PropertyChange{{Name: "info.name", Val: method}})
	return task
}

// failedTask returns a finished task on obj whose error is fault, as vSphere
// reports a refused reconfiguration or power-on.
func failedTask(obj types.ManagedObjectReference, method, msg string, fault types.BaseMethodFault) types.ManagedObjectReference {
	task := newTask(obj, method, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, fault
	})
	task.Run()
	simulator.Map.Update(task, []types.PropertyChange{
		{Name: "info.error", Val: types.LocalizedMethodFault{Fault: fault, LocalizedMessage: msg}},
	})
	return task.Self
}

// taskResult is a task's outcome once it finished inside the call that started it.
func taskResult(ref types.ManagedObjectReference) (types.AnyType, *types.LocalizedMethodFault) {
	task, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return nil, &types.LocalizedMethodFault{Fault: &types.ManagedObjectNotFound{Obj: ref}, LocalizedMessage: "task not found"}
	}
	var res types.AnyType
	var fault *types.LocalizedMethodFault
	simulator.Map.WithLock(task, func() { res, fault = task.Info.Result, task.Info.Error })
	return res, fault
}

func errorf(format string, args ...interface{}) error { return fmt.Errorf(format, args...) }
