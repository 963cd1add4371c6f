package main

import (
	"reflect"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Fixes for what stock govmomi 0.24.2 gets wrong with pyVmomi >= 8
// (see /work/shared/notes/testbed.md).  Every fix is a handler object
// registered in simulator.Map under the reference of the object it replaces.
// A wrapper embeds the stock type by value as its first field: the
// PropertyCollector finds the managed-object data by walking first fields.

// newModel returns the stock model for the mode, advertising API 7.0 so that
// pyVmomi does not drop newer fields.  The vcenter inventory is built later
// by buildProvider.
func newModel(mode string, vms int) *simulator.Model {
	var m *simulator.Model
	about := func(name string) {
		a := &m.ServiceContent.About
		a.ApiVersion = "7.0.0.0"
		a.Version = "7.0.3"
		a.Build = "19193900"
		a.FullName = name + " 7.0.3 build-19193900"
	}
	if mode == "esx" {
		m = simulator.ESX()
		m.Machine = vms
		about("VMware ESXi")
		return m
	}
	m = simulator.VPX()
	m.Datacenter, m.Folder, m.Portgroup, m.Host, m.Cluster, m.ClusterHost = 0, 0, 0, 0, 0, 0
	m.Datastore, m.Machine, m.Pool, m.App, m.Pod = 0, 0, 0, 0, 0
	about("VMware vCenter Server")
	return m
}

// propertyCollector answers Fetch (pyVmomi >= 8 reads each property with it)
// where the stock implementation panics: an unset property gets an empty
// answer and a deleted object gets ManagedObjectNotFound.
type propertyCollector struct {
	simulator.PropertyCollector
}

// FetchResponse mirrors simulator/internal.FetchResponse (an internal package);
// its type name is the SOAP response element name.
type FetchResponse struct {
	Returnval types.AnyType `xml:"returnval,omitempty,typeattr"`
}

type fetchBody struct {
	Res    *FetchResponse `xml:"FetchResponse,omitempty"`
	Fault_ *soap.Fault    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *fetchBody) Fault() *soap.Fault { return b.Fault_ }

// Fetch takes the request as types.AnyType because its type lives in an
// internal package; the dispatcher passes it by reflection.
func (pc *propertyCollector) Fetch(ctx *simulator.Context, req types.AnyType) (res soap.HasFault) {
	defer func() {
		if recover() == nil {
			return
		}
		this, _ := reflect.ValueOf(req).Elem().FieldByName("This").Interface().(types.ManagedObjectReference)
		if ctx.Map.Get(this) == nil {
			res = &fetchBody{Fault_: simulator.Fault("The object has already been deleted or has not been completely created",
				&types.ManagedObjectNotFound{Obj: this})}
			return
		}
		res = &fetchBody{Res: &FetchResponse{}} // the property is unset
	}()
	stock := reflect.ValueOf(&pc.PropertyCollector).MethodByName("Fetch")
	out := stock.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
	return out[0].Interface().(soap.HasFault)
}

// WaitForUpdatesEx reports the initial state of filters created since the
// last call at once.  The stock loop looks at filters only when some object
// changes; tasks finish inside the call that starts them, so a filter created
// on finished tasks would wait until maxWaitSeconds.  The stock path for an
// empty version reports exactly the objects that no filter has reported yet.
func (pc *propertyCollector) WaitForUpdatesEx(ctx *simulator.Context, req *types.WaitForUpdatesEx) soap.HasFault {
	if req.Version != "" {
		probe := *req
		probe.Version = ""
		res := pc.PropertyCollector.WaitForUpdatesEx(ctx, &probe)
		if res.Fault() != nil {
			return res
		}
		if set := res.(*methods.WaitForUpdatesExBody).Res.Returnval; len(set.FilterSet) != 0 {
			return res
		}
	}
	return pc.PropertyCollector.WaitForUpdatesEx(ctx, req)
}

// WaitForUpdates (deprecated, used by pyVim.task) goes through WaitForUpdatesEx above.
func (pc *propertyCollector) WaitForUpdates(ctx *simulator.Context, req *types.WaitForUpdates) soap.HasFault {
	body := &methods.WaitForUpdatesBody{}
	res := pc.WaitForUpdatesEx(ctx, &types.WaitForUpdatesEx{This: req.This, Version: req.Version})
	if body.Fault_ = res.Fault(); body.Fault_ == nil {
		body.Res = &types.WaitForUpdatesResponse{Returnval: *res.(*methods.WaitForUpdatesExBody).Res.Returnval}
	}
	return body
}

// CreatePropertyCollector hands out collectors with these fixes too.
func (pc *propertyCollector) CreatePropertyCollector(ctx *simulator.Context, req *types.CreatePropertyCollector) soap.HasFault {
	collector := &propertyCollector{}
	collector.Self.Type = "PropertyCollector"
	return &methods.CreatePropertyCollectorBody{
		Res: &types.CreatePropertyCollectorResponse{Returnval: ctx.Session.Put(collector).Reference()},
	}
}

// DestroyPropertyCollector destroys the collector's filters from a copy of
// the list: the stock one removes filters from the list it is iterating
// over and panics on the second filter.
func (pc *propertyCollector) DestroyPropertyCollector(ctx *simulator.Context, req *types.DestroyPropertyCollector) soap.HasFault {
	pc.CancelWaitForUpdates(&types.CancelWaitForUpdates{This: req.This})
	for _, ref := range append([]types.ManagedObjectReference(nil), pc.Filter...) {
		if filter, ok := ctx.Session.Get(ref).(*simulator.PropertyFilter); ok {
			filter.DestroyPropertyFilter(ctx, &types.DestroyPropertyFilter{This: ref})
		}
	}
	ctx.Session.Remove(req.This)
	ctx.Map.Remove(req.This)
	return &methods.DestroyPropertyCollectorBody{Res: &types.DestroyPropertyCollectorResponse{}}
}

func installPropertyCollector() {
	si := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	pc := &propertyCollector{}
	pc.Self = si.Content.PropertyCollector
	simulator.Map.Put(pc)
}

// fixHosts gives every host not yet fixed its own advanced options, firewall,
// network system, virtual NIC manager and datastore system.
func fixHosts(l *lab) {
	for _, e := range simulator.Map.All("HostSystem") {
		host := e.(*simulator.HostSystem)
		cm := &host.ConfigManager
		if _, done := simulator.Map.Get(*cm.NetworkSystem).(*hostNetworkSystem); done {
			continue
		}

		// Every host its own hardware UUID (the stock ESX model has one for all
		// processes): a .vmx's uuid.location names the host it belongs to.
		id := randomUUID()
		if host.Summary.Hardware != nil {
			host.Summary.Hardware.Uuid = id
		}
		if host.Hardware != nil {
			host.Hardware.SystemInfo.Uuid = id
		}

		simulator.Map.Put(newHostOptionManager(*cm.AdvancedOption))

		fw := simulator.Map.Get(*cm.FirewallSystem).(*simulator.HostFirewallSystem)
		fw.FirewallInfo = host.Config.Firewall // per-host copy (the stock one shares its rulesets)
		simulator.Map.Put(&hostFirewallSystem{HostFirewallSystem: *fw, host: host})

		ns := simulator.Map.Get(*cm.NetworkSystem).(*simulator.HostNetworkSystem)
		ns.NetworkInfo = host.Config.Network // one source of truth for networkInfo and config.network
		network := &hostNetworkSystem{HostNetworkSystem: *ns, host: host}
		simulator.Map.Put(network)
		network.adoptNetworks()

		vnics := newVirtualNicManager(host)
		simulator.Map.Put(vnics)
		ref := vnics.Self
		cm.VirtualNicManager = &ref

		if cm.ServiceSystem != nil {
			simulator.Map.Put(newServiceSystem(host))
		}

		dss := simulator.Map.Get(*cm.DatastoreSystem).(*simulator.HostDatastoreSystem)
		datastores := &hostDatastoreSystem{HostDatastoreSystem: *dss, host: host, nfsRoot: l.nfsRoot}
		simulator.Map.Put(datastores)
		datastores.syncVolumes()
	}
}

// Host advanced options.

type hostOption struct {
	key, label string
	value      interface{}
	kind       types.BaseOptionType
}

// hostOptions is a small, realistic subset of ESXi's advanced settings.
var hostOptions = []hostOption{
	{"Config.HostAgent.log.level", "hostd log level", "info", &types.StringOption{DefaultValue: "info"}},
	{"Net.FollowHardwareMac", "Follow hardware MAC address changes", int64(0), &types.LongOption{Min: 0, Max: 1}},
	{"Net.BlockGuestBPDU", "Block BPDUs sent by guests", int64(0), &types.LongOption{Min: 0, Max: 1}},
	{"NFS.MaxVolumes", "Maximum number of NFS volumes", int64(8), &types.LongOption{Min: 8, Max: 256, DefaultValue: 8}},
	{"UserVars.SuppressShellWarning", "Suppress the shell warning", int64(0), &types.LongOption{Min: 0, Max: 1}},
	{"Security.AccountLockFailures", "Failed logins before lock-out", int64(5), &types.LongOption{Min: 0, Max: 100, DefaultValue: 5}},
	{"Mem.ShareForceSalting", "Page sharing salting", int64(2), &types.LongOption{Min: 0, Max: 2, DefaultValue: 2}},
	{"Syslog.global.logHost", "Remote syslog hosts", "", &types.StringOption{}},
	{"Misc.PreferredHostName", "Preferred host name", "", &types.StringOption{}},
}

// hostOptionManager is one host's advanced settings; it validates changes
// against the supported options like ESXi does.
type hostOptionManager struct {
	simulator.OptionManager
}

func newHostOptionManager(ref types.ManagedObjectReference) *hostOptionManager {
	m := &hostOptionManager{}
	m.Self = ref
	for _, o := range hostOptions {
		m.Setting = append(m.Setting, &types.OptionValue{Key: o.key, Value: o.value})
		m.SupportedOption = append(m.SupportedOption, types.OptionDef{
			ElementDescription: types.ElementDescription{
				Description: types.Description{Label: o.label, Summary: o.label},
				Key:         o.key,
			},
			OptionType: o.kind,
		})
	}
	return m
}

func (m *hostOptionManager) UpdateOptions(req *types.UpdateOptions) soap.HasFault {
	body := new(methods.UpdateOptionsBody)
	values := make([]interface{}, len(req.ChangedValue))
	for i, change := range req.ChangedValue {
		opt := change.GetOptionValue()
		value, fault := m.check(opt)
		if fault != nil {
			body.Fault_ = simulator.Fault("A specified parameter was not correct: "+opt.Key, fault)
			return body
		}
		values[i] = value
	}
	for i, change := range req.ChangedValue {
		key := change.GetOptionValue().Key
		for _, setting := range m.Setting {
			if s := setting.GetOptionValue(); s.Key == key {
				s.Value = values[i]
			}
		}
	}
	body.Res = new(types.UpdateOptionsResponse)
	return body
}

// check validates one change and returns the value to store.
func (m *hostOptionManager) check(opt *types.OptionValue) (interface{}, types.BaseMethodFault) {
	for _, def := range m.SupportedOption {
		if def.Key != opt.Key {
			continue
		}
		invalid := &types.InvalidArgument{InvalidProperty: opt.Key}
		switch kind := def.OptionType.(type) {
		case *types.LongOption:
			n, ok := toInt64(opt.Value)
			if !ok || n < kind.Min || n > kind.Max {
				return nil, invalid
			}
			return n, nil
		case *types.StringOption:
			s, ok := opt.Value.(string)
			if !ok {
				return nil, invalid
			}
			return s, nil
		}
		return opt.Value, nil
	}
	return nil, &types.InvalidName{Name: opt.Key}
}

func toInt64(v interface{}) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case int8:
		return int64(n), true
	case int:
		return int64(n), true
	}
	return 0, false
}

// Host firewall.

// hostFirewallSystem serves the host's own config.firewall and implements
// UpdateRuleset (allowed IP addresses and networks).
type hostFirewallSystem struct {
	simulator.HostFirewallSystem
	host *simulator.HostSystem
}

func (s *hostFirewallSystem) ruleset(id string) *types.HostFirewallRuleset {
	for i := range s.FirewallInfo.Ruleset {
		if s.FirewallInfo.Ruleset[i].Key == id {
			return &s.FirewallInfo.Ruleset[i]
		}
	}
	return nil
}

func (s *hostFirewallSystem) change(id string, f func(*types.HostFirewallRuleset)) *soap.Fault {
	var found bool
	simulator.Map.WithLock(s.host, func() {
		if rs := s.ruleset(id); rs != nil {
			f(rs)
			found = true
		}
	})
	if !found {
		return simulator.Fault("ruleset not found: "+id, &types.NotFound{})
	}
	return nil
}

func (s *hostFirewallSystem) UpdateRuleset(req *types.UpdateRuleset) soap.HasFault {
	body := &methods.UpdateRulesetBody{}
	allowed := req.Spec.AllowedHosts // decoded for this request, not shared
	body.Fault_ = s.change(req.Id, func(rs *types.HostFirewallRuleset) { rs.AllowedHosts = &allowed })
	if body.Fault_ == nil {
		body.Res = new(types.UpdateRulesetResponse)
	}
	return body
}

func (s *hostFirewallSystem) EnableRuleset(req *types.EnableRuleset) soap.HasFault {
	body := &methods.EnableRulesetBody{}
	body.Fault_ = s.change(req.Id, func(rs *types.HostFirewallRuleset) { rs.Enabled = true })
	if body.Fault_ == nil {
		body.Res = new(types.EnableRulesetResponse)
	}
	return body
}

func (s *hostFirewallSystem) DisableRuleset(req *types.DisableRuleset) soap.HasFault {
	body := &methods.DisableRulesetBody{}
	body.Fault_ = s.change(req.Id, func(rs *types.HostFirewallRuleset) { rs.Enabled = false })
	if body.Fault_ == nil {
		body.Res = new(types.DisableRulesetResponse)
	}
	return body
}

// Reference-slice helpers that never write into a shared backing array
// (the stock model aliases host.Network with its cluster's list).

func withRef(refs []types.ManagedObjectReference, ref types.ManagedObjectReference) []types.ManagedObjectReference {
	if simulator.FindReference(refs, ref) != nil {
		return refs
	}
	out := make([]types.ManagedObjectReference, 0, len(refs)+1)
	return append(append(out, refs...), ref)
}

func withoutRef(refs []types.ManagedObjectReference, ref types.ManagedObjectReference) []types.ManagedObjectReference {
	out := make([]types.ManagedObjectReference, 0, len(refs))
	for _, r := range refs {
		if r != ref {
			out = append(out, r)
		}
	}
	return out
}

// computeResource returns the host's parent (standalone or cluster) as its ComputeResource data.
func computeResource(host *simulator.HostSystem) *mo.ComputeResource {
	switch parent := simulator.Map.Get(*host.Parent).(type) {
	case *mo.ComputeResource:
		return parent
	case *simulator.ClusterComputeResource:
		return &parent.ComputeResource
	}
	return nil
}

// datacenterOf walks up the inventory to the entity's datacenter.
func datacenterOf(e mo.Entity) *simulator.Datacenter {
	for e != nil && e.Entity().Parent != nil {
		obj := simulator.Map.Get(*e.Entity().Parent)
		if dc, ok := obj.(*simulator.Datacenter); ok {
			return dc
		}
		e, _ = obj.(mo.Entity)
	}
	return nil
}
