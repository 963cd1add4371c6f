package main

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// hostNetworkSystem keeps standard switches, portgroups and VMkernel NICs in
// the host's config.network (the same object as networkInfo) and keeps the
// inventory's Network objects in step: a standard portgroup name is one
// Network object listing every host that has a portgroup of that name.
type hostNetworkSystem struct {
	simulator.HostNetworkSystem
	host *simulator.HostSystem
}

func pgKey(name string) string      { return "key-vim.host.PortGroup-" + name }
func vswitchKey(name string) string { return "key-vim.host.VirtualSwitch-" + name }
func vnicKey(device string) string  { return "key-vim.host.VirtualNic-" + device }

// mutate runs f holding the host's lock: property reads of the host hold it too.
func (s *hostNetworkSystem) mutate(f func()) { simulator.Map.WithLock(s.host, f) }

func (s *hostNetworkSystem) vswitch(name string) *types.HostVirtualSwitch {
	for i := range s.NetworkInfo.Vswitch {
		if s.NetworkInfo.Vswitch[i].Name == name {
			return &s.NetworkInfo.Vswitch[i]
		}
	}
	return nil
}

func (s *hostNetworkSystem) portgroup(name string) *types.HostPortGroup {
	for i := range s.NetworkInfo.Portgroup {
		if s.NetworkInfo.Portgroup[i].Spec.Name == name {
			return &s.NetworkInfo.Portgroup[i]
		}
	}
	return nil
}

func (s *hostNetworkSystem) vnic(device string) *types.HostVirtualNic {
	for i := range s.NetworkInfo.Vnic {
		if s.NetworkInfo.Vnic[i].Device == device {
			return &s.NetworkInfo.Vnic[i]
		}
	}
	return nil
}

func fault(msg string, f types.BaseMethodFault) *soap.Fault { return simulator.Fault(msg, f) }

// adoptNetworks records the host on the Network objects of the portgroups it already has.
func (s *hostNetworkSystem) adoptNetworks() {
	for _, pg := range s.NetworkInfo.Portgroup {
		if network := s.findNetwork(pg.Spec.Name); network != nil {
			s.attach(network)
		}
	}
}

// Virtual switches.

func (s *hostNetworkSystem) AddVirtualSwitch(req *types.AddVirtualSwitch) soap.HasFault {
	body := &methods.AddVirtualSwitchBody{}
	if req.VswitchName == "" {
		body.Fault_ = fault("vswitchName", &types.InvalidArgument{InvalidProperty: "vswitchName"})
		return body
	}
	s.mutate(func() {
		if s.vswitch(req.VswitchName) != nil {
			body.Fault_ = fault(req.VswitchName, &types.AlreadyExists{Name: req.VswitchName})
			return
		}
		spec := types.HostVirtualSwitchSpec{NumPorts: 128}
		if req.Spec != nil {
			spec = *req.Spec
		}
		vs := types.HostVirtualSwitch{
			Name:              req.VswitchName,
			Key:               vswitchKey(req.VswitchName),
			NumPorts:          spec.NumPorts,
			NumPortsAvailable: spec.NumPorts,
			Mtu:               spec.Mtu,
			Spec:              spec,
		}
		if vs.Mtu == 0 {
			vs.Mtu = 1500
		}
		s.NetworkInfo.Vswitch = append(s.NetworkInfo.Vswitch, vs)
		body.Res = &types.AddVirtualSwitchResponse{}
	})
	return body
}

func (s *hostNetworkSystem) UpdateVirtualSwitch(req *types.UpdateVirtualSwitch) soap.HasFault {
	body := &methods.UpdateVirtualSwitchBody{}
	s.mutate(func() {
		vs := s.vswitch(req.VswitchName)
		if vs == nil {
			body.Fault_ = fault(req.VswitchName, &types.NotFound{})
			return
		}
		vs.Spec = req.Spec
		if req.Spec.Mtu != 0 {
			vs.Mtu = req.Spec.Mtu
		}
		body.Res = &types.UpdateVirtualSwitchResponse{}
	})
	return body
}

func (s *hostNetworkSystem) RemoveVirtualSwitch(req *types.RemoveVirtualSwitch) soap.HasFault {
	body := &methods.RemoveVirtualSwitchBody{}
	s.mutate(func() {
		vs := s.vswitch(req.VswitchName)
		switch {
		case vs == nil:
			body.Fault_ = fault(req.VswitchName, &types.NotFound{})
		case len(vs.Portgroup) > 0:
			body.Fault_ = fault(req.VswitchName+" still has portgroups", &types.ResourceInUse{Name: req.VswitchName})
		default:
			var keep []types.HostVirtualSwitch
			for _, v := range s.NetworkInfo.Vswitch {
				if v.Name != req.VswitchName {
					keep = append(keep, v)
				}
			}
			s.NetworkInfo.Vswitch = keep
			body.Res = &types.RemoveVirtualSwitchResponse{}
		}
	})
	return body
}

// Portgroups.

func (s *hostNetworkSystem) AddPortGroup(ctx *simulator.Context, req *types.AddPortGroup) soap.HasFault {
	body := &methods.AddPortGroupBody{}
	spec := req.Portgrp
	normalizePolicy(&spec.Policy)
	if spec.Name == "" {
		body.Fault_ = fault("portgroup name", &types.InvalidArgument{InvalidProperty: "name"})
		return body
	}
	var exists, noSwitch bool
	s.mutate(func() { exists, noSwitch = s.portgroup(spec.Name) != nil, s.vswitch(spec.VswitchName) == nil })
	switch {
	case exists:
		body.Fault_ = fault(spec.Name, &types.AlreadyExists{Name: spec.Name})
		return body
	case noSwitch:
		body.Fault_ = fault("no virtual switch "+spec.VswitchName, &types.NotFound{})
		return body
	}
	if f := s.joinNetwork(ctx, spec.Name); f != nil {
		body.Fault_ = f
		return body
	}
	s.mutate(func() {
		vs := s.vswitch(spec.VswitchName)
		vs.Portgroup = append(append([]string{}, vs.Portgroup...), pgKey(spec.Name))
		s.NetworkInfo.Portgroup = append(s.NetworkInfo.Portgroup, types.HostPortGroup{
			Key:            pgKey(spec.Name),
			Vswitch:        vs.Key,
			Spec:           spec,
			ComputedPolicy: computedPolicy(vs.Spec.Policy, spec.Policy),
		})
	})
	body.Res = &types.AddPortGroupResponse{}
	return body
}

func (s *hostNetworkSystem) UpdatePortGroup(ctx *simulator.Context, req *types.UpdatePortGroup) soap.HasFault {
	body := &methods.UpdatePortGroupBody{}
	spec := req.Portgrp
	normalizePolicy(&spec.Policy)
	if spec.Name == "" {
		spec.Name = req.PgName
	}
	var current *types.HostPortGroup
	var clash bool
	s.mutate(func() {
		current = s.portgroup(req.PgName)
		if spec.VswitchName == "" && current != nil {
			spec.VswitchName = strings.TrimPrefix(current.Vswitch, vswitchKey(""))
		}
		clash = spec.Name != req.PgName && s.portgroup(spec.Name) != nil
		if s.vswitch(spec.VswitchName) == nil {
			current = nil
		}
	})
	switch {
	case current == nil:
		body.Fault_ = fault("portgroup or virtual switch not found", &types.NotFound{})
		return body
	case clash:
		body.Fault_ = fault(spec.Name, &types.AlreadyExists{Name: spec.Name})
		return body
	}
	if spec.Name != req.PgName {
		if f := s.joinNetwork(ctx, spec.Name); f != nil {
			body.Fault_ = f
			return body
		}
	}
	s.mutate(func() {
		for i := range s.NetworkInfo.Vswitch {
			vs := &s.NetworkInfo.Vswitch[i]
			vs.Portgroup = withoutString(vs.Portgroup, pgKey(req.PgName))
			if vs.Name == spec.VswitchName {
				vs.Portgroup = append(vs.Portgroup, pgKey(spec.Name))
			}
		}
		vs := s.vswitch(spec.VswitchName)
		pg := s.portgroup(req.PgName)
		pg.Key, pg.Vswitch, pg.Spec = pgKey(spec.Name), vs.Key, spec
		pg.ComputedPolicy = computedPolicy(vs.Spec.Policy, spec.Policy)
		for i := range s.NetworkInfo.Vnic {
			if nic := &s.NetworkInfo.Vnic[i]; nic.Portgroup == req.PgName {
				nic.Portgroup, nic.Spec.Portgroup = spec.Name, spec.Name
			}
		}
	})
	if spec.Name != req.PgName {
		s.leaveNetwork(ctx, req.PgName)
	}
	body.Res = &types.UpdatePortGroupResponse{}
	return body
}

func (s *hostNetworkSystem) RemovePortGroup(ctx *simulator.Context, req *types.RemovePortGroup) soap.HasFault {
	body := &methods.RemovePortGroupBody{}
	s.mutate(func() {
		if s.portgroup(req.PgName) == nil {
			body.Fault_ = fault(req.PgName, &types.NotFound{})
			return
		}
		for _, nic := range s.NetworkInfo.Vnic {
			if nic.Portgroup == req.PgName {
				body.Fault_ = fault(req.PgName+" is used by "+nic.Device, &types.ResourceInUse{Name: req.PgName})
				return
			}
		}
		var keep []types.HostPortGroup
		for _, pg := range s.NetworkInfo.Portgroup {
			if pg.Spec.Name != req.PgName {
				keep = append(keep, pg)
			}
		}
		s.NetworkInfo.Portgroup = keep
		for i := range s.NetworkInfo.Vswitch {
			vs := &s.NetworkInfo.Vswitch[i]
			vs.Portgroup = withoutString(vs.Portgroup, pgKey(req.PgName))
		}
	})
	if body.Fault_ != nil {
		return body
	}
	s.leaveNetwork(ctx, req.PgName)
	body.Res = &types.RemovePortGroupResponse{}
	return body
}

// normalizePolicy stores a portgroup policy as ESXi does: every sub-policy
// present, empty meaning "inherit from the switch".  Modules such as
// community.vmware.vmware_portgroup compare against that shape.
func normalizePolicy(p *types.HostNetworkPolicy) {
	if p.Security == nil {
		p.Security = &types.HostNetworkSecurityPolicy{}
	}
	if p.NicTeaming == nil {
		p.NicTeaming = &types.HostNicTeamingPolicy{}
	}
	if p.NicTeaming.FailureCriteria == nil {
		p.NicTeaming.FailureCriteria = &types.HostNicFailureCriteria{}
	}
	if p.OffloadPolicy == nil {
		p.OffloadPolicy = &types.HostNetOffloadCapabilities{}
	}
	if p.ShapingPolicy == nil {
		p.ShapingPolicy = &types.HostNetworkTrafficShapingPolicy{}
	}
}

// computedPolicy applies a portgroup's policy overrides to its switch's policy.
func computedPolicy(vswitch *types.HostNetworkPolicy, pg types.HostNetworkPolicy) types.HostNetworkPolicy {
	out := types.HostNetworkPolicy{}
	if vswitch != nil {
		out = *vswitch
	}
	if pg.Security != nil {
		sec := types.HostNetworkSecurityPolicy{}
		if out.Security != nil {
			sec = *out.Security
		}
		if pg.Security.AllowPromiscuous != nil {
			sec.AllowPromiscuous = pg.Security.AllowPromiscuous
		}
		if pg.Security.MacChanges != nil {
			sec.MacChanges = pg.Security.MacChanges
		}
		if pg.Security.ForgedTransmits != nil {
			sec.ForgedTransmits = pg.Security.ForgedTransmits
		}
		out.Security = &sec
	}
	if pg.NicTeaming != nil && pg.NicTeaming.Policy != "" {
		out.NicTeaming = pg.NicTeaming
	}
	if pg.ShapingPolicy != nil && pg.ShapingPolicy.Enabled != nil {
		out.ShapingPolicy = pg.ShapingPolicy
	}
	return out
}

func withoutString(list []string, s string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// Network objects.

func (s *hostNetworkSystem) findNetwork(name string) *mo.Network {
	dc := datacenterOf(s.host)
	if dc == nil {
		return nil
	}
	network, _ := simulator.Map.FindByName(name, dc.Network).(*mo.Network)
	return network
}

// joinNetwork makes sure a Network object called name exists and lists this host.
// networkObjects serialises the find-or-create and the remove-when-unused of the
// datacenter's Network objects: hosts adding (or removing) the same portgroup
// concurrently would otherwise both create it (DuplicateName) or both remove it.
var networkObjects sync.Mutex

func (s *hostNetworkSystem) joinNetwork(ctx *simulator.Context, name string) *soap.Fault {
	networkObjects.Lock()
	defer networkObjects.Unlock()
	network := s.findNetwork(name)
	if network == nil {
		if dc := datacenterOf(s.host); dc != nil && simulator.Map.FindByName(name, dc.Network) != nil {
			return fault(name+" is a distributed portgroup", &types.DuplicateName{Name: name})
		}
		// The stock AddPortGroup, on a scratch switch, creates the Network
		// object in the datacenter's network folder (with unexported helpers).
		scratch := &simulator.HostNetworkSystem{Host: &s.host.HostSystem}
		scratch.NetworkInfo = &types.HostNetworkInfo{Vswitch: []types.HostVirtualSwitch{{Name: "scratch"}}}
		res := scratch.AddPortGroup(ctx, &types.AddPortGroup{Portgrp: types.HostPortGroupSpec{Name: name, VswitchName: "scratch"}})
		if f := res.Fault(); f != nil {
			return f
		}
		if network = s.findNetwork(name); network == nil {
			return fault("network "+name+" was not created", &types.RuntimeFault{})
		}
	}
	s.attach(network)
	return nil
}

func (s *hostNetworkSystem) attach(network *mo.Network) {
	simulator.Map.WithLock(network, func() { network.Host = withRef(network.Host, s.host.Self) })
	s.mutate(func() { s.host.Network = withRef(s.host.Network, network.Self) })
	if cr := computeResource(s.host); cr != nil {
		simulator.Map.WithLock(cr, func() { cr.Network = withRef(cr.Network, network.Self) })
	}
}

// leaveNetwork drops this host from the Network called name and removes the
// Network object when no host and no VM uses it any more.
func (s *hostNetworkSystem) leaveNetwork(ctx *simulator.Context, name string) {
	networkObjects.Lock()
	defer networkObjects.Unlock()
	network := s.findNetwork(name)
	if network == nil {
		return
	}
	var unused bool
	simulator.Map.WithLock(network, func() {
		network.Host = withoutRef(network.Host, s.host.Self)
		unused = len(network.Host) == 0 && len(network.Vm) == 0
	})
	unused = unused && !usedByVM(network.Self)
	s.mutate(func() { s.host.Network = withoutRef(s.host.Network, network.Self) })
	if cr := computeResource(s.host); cr != nil {
		simulator.Map.WithLock(cr, func() {
			for _, h := range cr.Host {
				if simulator.FindReference(network.Host, h) != nil {
					return // another host of this compute resource still has it
				}
			}
			cr.Network = withoutRef(cr.Network, network.Self)
		})
	}
	dc := datacenterOf(s.host)
	if !unused || dc == nil {
		return
	}
	folder := simulator.Map.Get(dc.NetworkFolder).(*simulator.Folder)
	if simulator.Map.FindByName(name, folder.ChildEntity) == nil {
		return // not in the top network folder: leave it alone
	}
	scratch := &simulator.HostNetworkSystem{Host: &s.host.HostSystem}
	scratch.NetworkInfo = &types.HostNetworkInfo{Vswitch: []types.HostVirtualSwitch{{Name: "scratch", Portgroup: []string{name}}}}
	scratch.RemovePortGroup(ctx, &types.RemovePortGroup{PgName: name})
}

func usedByVM(network types.ManagedObjectReference) bool {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		var used bool
		simulator.Map.WithLock(vm, func() { used = simulator.FindReference(vm.Network, network) != nil })
		if used {
			return true
		}
	}
	return false
}

// VMkernel NICs.

func (s *hostNetworkSystem) AddVirtualNic(req *types.AddVirtualNic) soap.HasFault {
	body := &methods.AddVirtualNicBody{}
	nic := req.Nic
	s.mutate(func() {
		if req.Portgroup != "" && s.portgroup(req.Portgroup) == nil {
			body.Fault_ = fault("portgroup "+req.Portgroup, &types.NotFound{})
			return
		}
		if req.Portgroup == "" && nic.DistributedVirtualPort == nil && nic.OpaqueNetwork == nil {
			body.Fault_ = fault("a portgroup or distributed port is required", &types.InvalidArgument{InvalidProperty: "portgroup"})
			return
		}
		device := s.nextVnic()
		nic.Portgroup = req.Portgroup
		if nic.Mac == "" {
			nic.Mac = randomMAC()
		}
		if nic.Mtu == 0 {
			nic.Mtu = 1500
		}
		if nic.NetStackInstanceKey == "" {
			nic.NetStackInstanceKey = "defaultTcpipStack"
		}
		s.NetworkInfo.Vnic = append(s.NetworkInfo.Vnic, types.HostVirtualNic{
			Device:    device,
			Key:       vnicKey(device),
			Portgroup: req.Portgroup,
			Spec:      nic,
			Port:      fmt.Sprintf("key-vim.host.PortGroup.Port-%d", 33554440+len(s.NetworkInfo.Vnic)),
		})
		body.Res = &types.AddVirtualNicResponse{Returnval: device}
	})
	s.refreshVnicManager()
	return body
}

func (s *hostNetworkSystem) UpdateVirtualNic(req *types.UpdateVirtualNic) soap.HasFault {
	body := &methods.UpdateVirtualNicBody{}
	n := req.Nic
	s.mutate(func() {
		nic := s.vnic(req.Device)
		if nic == nil {
			body.Fault_ = fault(req.Device, &types.NotFound{})
			return
		}
		if n.Portgroup != "" && s.portgroup(n.Portgroup) == nil {
			body.Fault_ = fault("portgroup "+n.Portgroup, &types.NotFound{})
			return
		}
		spec := &nic.Spec
		if n.Ip != nil {
			spec.Ip = n.Ip
		}
		if n.Mac != "" {
			spec.Mac = n.Mac
		}
		if n.Mtu != 0 {
			spec.Mtu = n.Mtu
		}
		if n.TsoEnabled != nil {
			spec.TsoEnabled = n.TsoEnabled
		}
		if n.IpRouteSpec != nil {
			spec.IpRouteSpec = n.IpRouteSpec
		}
		if n.PinnedPnic != "" {
			spec.PinnedPnic = n.PinnedPnic
		}
		if n.DistributedVirtualPort != nil {
			spec.DistributedVirtualPort, spec.Portgroup, nic.Portgroup = n.DistributedVirtualPort, "", ""
		}
		if n.Portgroup != "" {
			spec.DistributedVirtualPort, spec.Portgroup, nic.Portgroup = nil, n.Portgroup, n.Portgroup
		}
		body.Res = &types.UpdateVirtualNicResponse{}
	})
	s.refreshVnicManager()
	return body
}

func (s *hostNetworkSystem) RemoveVirtualNic(req *types.RemoveVirtualNic) soap.HasFault {
	body := &methods.RemoveVirtualNicBody{}
	s.mutate(func() {
		if s.vnic(req.Device) == nil {
			body.Fault_ = fault(req.Device, &types.NotFound{})
			return
		}
		var keep []types.HostVirtualNic
		for _, nic := range s.NetworkInfo.Vnic {
			if nic.Device != req.Device {
				keep = append(keep, nic)
			}
		}
		s.NetworkInfo.Vnic = keep
		body.Res = &types.RemoveVirtualNicResponse{}
	})
	s.refreshVnicManager()
	return body
}

func (s *hostNetworkSystem) nextVnic() string {
	for i := 0; ; i++ {
		if device := fmt.Sprintf("vmk%d", i); s.vnic(device) == nil {
			return device
		}
	}
}

func (s *hostNetworkSystem) refreshVnicManager() {
	if m, ok := simulator.Map.Get(*s.host.ConfigManager.VirtualNicManager).(*hostVirtualNicManager); ok {
		simulator.Map.WithLock(m, m.refresh)
	}
}

// randomMAC returns a VMware-assigned-range address like ESXi gives a vmknic.
func randomMAC() string {
	return fmt.Sprintf("00:50:56:%02x:%02x:%02x", 0x60+rand.Intn(0x20), rand.Intn(256), rand.Intn(256))
}

// hostVirtualNicManager tells which VMkernel NIC carries which service
// (management, vmotion, vSphereReplication, ...).
type hostVirtualNicManager struct {
	mo.HostVirtualNicManager
	host     *simulator.HostSystem
	nicTypes []types.VirtualNicManagerNetConfig // nicType and multiSelectAllowed only
	selected map[string][]string                // nicType -> devices
}

func newVirtualNicManager(host *simulator.HostSystem) *hostVirtualNicManager {
	m := &hostVirtualNicManager{host: host, selected: map[string][]string{"management": {"vmk0"}}}
	m.Self = types.ManagedObjectReference{Type: "HostVirtualNicManager", Value: "vnicmgr-" + host.Self.Value}
	if info := host.Config.VirtualNicManagerInfo; info != nil {
		for _, nc := range info.NetConfig {
			m.nicTypes = append(m.nicTypes, types.VirtualNicManagerNetConfig{NicType: nc.NicType, MultiSelectAllowed: nc.MultiSelectAllowed})
		}
	}
	// Services added in 7.0 (the captured host info is from 6.5).
	for _, nicType := range []string{"vSphereBackupNFC", "nvmeTcp", "nvmeRdma"} {
		if !m.known(nicType) {
			m.nicTypes = append(m.nicTypes, types.VirtualNicManagerNetConfig{NicType: nicType, MultiSelectAllowed: true})
		}
	}
	m.refresh()
	host.Config.VirtualNicManagerInfo = &m.Info
	return m
}

// refresh rebuilds info.netConfig from the host's VMkernel NICs.
func (m *hostVirtualNicManager) refresh() {
	var vnics []types.HostVirtualNic
	simulator.Map.WithLock(m.host, func() { vnics = append(vnics, m.host.Config.Network.Vnic...) })
	exists := map[string]bool{}
	for _, nic := range vnics {
		exists[nic.Device] = true
	}
	var configs []types.VirtualNicManagerNetConfig
	for _, t := range m.nicTypes {
		nc := t
		for _, nic := range vnics {
			candidate := nic
			candidate.Key = t.NicType + "." + nic.Key
			nc.CandidateVnic = append(nc.CandidateVnic, candidate)
		}
		var keep []string
		for _, device := range m.selected[t.NicType] {
			if exists[device] {
				keep = append(keep, device)
				nc.SelectedVnic = append(nc.SelectedVnic, t.NicType+"."+vnicKey(device))
			}
		}
		m.selected[t.NicType] = keep
		configs = append(configs, nc)
	}
	sort.Slice(configs, func(i, j int) bool { return configs[i].NicType < configs[j].NicType })
	m.Info.NetConfig = configs
}

func (m *hostVirtualNicManager) known(nicType string) bool {
	for _, t := range m.nicTypes {
		if t.NicType == nicType {
			return true
		}
	}
	return false
}

func (m *hostVirtualNicManager) QueryNetConfig(req *types.QueryNetConfig) soap.HasFault {
	body := &methods.QueryNetConfigBody{}
	m.refresh()
	for i := range m.Info.NetConfig {
		if m.Info.NetConfig[i].NicType == req.NicType {
			nc := m.Info.NetConfig[i]
			body.Res = &types.QueryNetConfigResponse{Returnval: &nc}
			return body
		}
	}
	body.Fault_ = fault("nicType "+req.NicType, &types.InvalidArgument{InvalidProperty: "nicType"})
	return body
}

func (m *hostVirtualNicManager) choose(nicType, device string, on bool) *soap.Fault {
	m.refresh()
	if !m.known(nicType) {
		return fault("nicType "+nicType, &types.InvalidArgument{InvalidProperty: "nicType"})
	}
	found := false
	simulator.Map.WithLock(m.host, func() {
		for _, nic := range m.host.Config.Network.Vnic {
			found = found || nic.Device == device
		}
	})
	if !found {
		return fault("device "+device, &types.InvalidArgument{InvalidProperty: "device"})
	}
	devices := withoutString(m.selected[nicType], device)
	if on {
		devices = append(devices, device)
	}
	m.selected[nicType] = devices
	m.refresh()
	return nil
}

func (m *hostVirtualNicManager) SelectVnicForNicType(req *types.SelectVnicForNicType) soap.HasFault {
	body := &methods.SelectVnicForNicTypeBody{Fault_: m.choose(req.NicType, req.Device, true)}
	if body.Fault_ == nil {
		body.Res = &types.SelectVnicForNicTypeResponse{}
	}
	return body
}

func (m *hostVirtualNicManager) DeselectVnicForNicType(req *types.DeselectVnicForNicType) soap.HasFault {
	body := &methods.DeselectVnicForNicTypeBody{Fault_: m.choose(req.NicType, req.Device, false)}
	if body.Fault_ == nil {
		body.Res = &types.DeselectVnicForNicTypeResponse{}
	}
	return body
}
