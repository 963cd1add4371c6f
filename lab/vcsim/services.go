package main

import (
	"bytes"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
	"net"
)

// hostServiceSystem serves the host's own config.service (the stock model
// references a HostServiceSystem in configManager but registers none).
type hostServiceSystem struct {
	mo.HostServiceSystem
	host *simulator.HostSystem
}

func newServiceSystem(host *simulator.HostSystem) *hostServiceSystem {
	s := &hostServiceSystem{host: host}
	s.Self = *host.ConfigManager.ServiceSystem
	info := &types.HostServiceInfo{}
	if host.Config.Service != nil {
		copyServices(host.Config.Service, info) // per-host copy: the stock hosts share one list
	}
	host.Config.Service = info
	s.ServiceInfo = *info
	return s
}

func (s *hostServiceSystem) change(id string, f func(*types.HostService)) *soap.Fault {
	var found bool
	simulator.Map.WithLock(s.host, func() {
		for i := range s.host.Config.Service.Service {
			if svc := &s.host.Config.Service.Service[i]; svc.Key == id {
				f(svc)
				found = true
			}
		}
		s.ServiceInfo = *s.host.Config.Service
	})
	if !found {
		return simulator.Fault("service not found: "+id, &types.NotFound{})
	}
	return nil
}

func (s *hostServiceSystem) UpdateServicePolicy(req *types.UpdateServicePolicy) soap.HasFault {
	body := &methods.UpdateServicePolicyBody{}
	switch req.Policy {
	case "on", "off", "automatic":
	default:
		body.Fault_ = simulator.Fault("policy "+req.Policy, &types.InvalidArgument{InvalidProperty: "policy"})
		return body
	}
	if body.Fault_ = s.change(req.Id, func(svc *types.HostService) { svc.Policy = req.Policy }); body.Fault_ == nil {
		body.Res = &types.UpdateServicePolicyResponse{}
	}
	return body
}

func (s *hostServiceSystem) StartService(req *types.StartService) soap.HasFault {
	body := &methods.StartServiceBody{}
	if body.Fault_ = s.change(req.Id, func(svc *types.HostService) { svc.Running = true }); body.Fault_ == nil {
		body.Res = &types.StartServiceResponse{}
	}
	return body
}

func (s *hostServiceSystem) StopService(req *types.StopService) soap.HasFault {
	body := &methods.StopServiceBody{}
	if body.Fault_ = s.change(req.Id, func(svc *types.HostService) { svc.Running = false }); body.Fault_ == nil {
		body.Res = &types.StopServiceResponse{}
	}
	return body
}

func (s *hostServiceSystem) RestartService(req *types.RestartService) soap.HasFault {
	body := &methods.RestartServiceBody{}
	if body.Fault_ = s.change(req.Id, func(svc *types.HostService) { svc.Running = true }); body.Fault_ == nil {
		body.Res = &types.RestartServiceResponse{}
	}
	return body
}

func (s *hostServiceSystem) RefreshServices(req *types.RefreshServices) soap.HasFault {
	return &methods.RefreshServicesBody{Res: &types.RefreshServicesResponse{}}
}

// UpdateIpRouteTableConfig applies add / remove operations to the host's
// IPv4 route table (config.network.routeTableInfo); a new route goes out of
// the VMkernel NIC whose subnet holds its gateway, as on ESXi.
func (s *hostNetworkSystem) UpdateIpRouteTableConfig(req *types.UpdateIpRouteTableConfig) soap.HasFault {
	body := &methods.UpdateIpRouteTableConfigBody{}
	s.mutate(func() {
		info := s.NetworkInfo.RouteTableInfo
		if info == nil {
			info = &types.HostIpRouteTableInfo{}
		}
		routes := append([]types.HostIpRouteEntry(nil), info.IpRoute...)
		find := func(r types.HostIpRouteEntry) int {
			for i, have := range routes {
				if have.Network == r.Network && have.PrefixLength == r.PrefixLength && have.Gateway == r.Gateway {
					return i
				}
			}
			return -1
		}
		for _, op := range req.Config.IpRoute {
			route := op.Route
			switch op.ChangeOperation {
			case "add":
				if find(route) >= 0 {
					body.Fault_ = fault(route.Network, &types.AlreadyExists{Name: route.Network})
					return
				}
				if route.DeviceName == "" {
					route.DeviceName = s.deviceFor(route.Gateway)
				}
				routes = append(routes, route)
			case "remove":
				i := find(route)
				if i < 0 {
					body.Fault_ = fault(route.Network, &types.NotFound{})
					return
				}
				routes = append(routes[:i], routes[i+1:]...)
			case "ignore", "":
			default:
				body.Fault_ = fault("changeOperation "+op.ChangeOperation, &types.InvalidArgument{InvalidProperty: "changeOperation"})
				return
			}
		}
		info.IpRoute = routes
		s.NetworkInfo.RouteTableInfo = info
		body.Res = &types.UpdateIpRouteTableConfigResponse{}
	})
	return body
}

// deviceFor names the VMkernel NIC whose IPv4 subnet holds addr ("" when none does).
func (s *hostNetworkSystem) deviceFor(addr string) string {
	ip := net.ParseIP(addr)
	for _, nic := range s.NetworkInfo.Vnic {
		if nic.Spec.Ip == nil || ip == nil {
			continue
		}
		mask := net.IPMask(net.ParseIP(nic.Spec.Ip.SubnetMask).To4())
		if own := net.ParseIP(nic.Spec.Ip.IpAddress); own != nil && own.Mask(mask).Equal(ip.Mask(mask)) {
			return nic.Device
		}
	}
	return ""
}

// copyServices deep-copies service info through its XML encoding, as the simulator copies data.
func copyServices(src, dst *types.HostServiceInfo) {
	b, err := xml.Marshal(src)
	if err != nil {
		panic(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(dst); err != nil {
		panic(err)
	}
}
